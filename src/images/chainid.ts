/**
 * Chain IDs (OCI image-spec identity): the name of the snapshot that holds
 * layers 0..i applied in order. ChainID(L0) = DiffID(L0);
 * ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln)).
 */
import { fromBytes } from '../digest/index.js';

export function chainIDs(diffIDs: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIDs) out.push(out.length === 0 ? d : fromBytes(`${out[out.length - 1]} ${d}`));
  return out;
}

export function chainID(diffIDs: string[]): string {
  const ids = chainIDs(diffIDs);
  return ids[ids.length - 1] ?? '';
}
