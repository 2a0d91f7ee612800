/** Shared fixtures for the metadata tests: a fresh embedded root, identifier and filter tables. */
import { openEmbedded, type Embedded } from '../../src/services/embedded.js';
import { tempDir } from '../util/tmp.js';

/** Runs fn on services opened on a fresh root; closes and removes it afterwards. */
export async function withEmbedded(fn: (svc: Embedded, root: string) => Promise<void>): Promise<void> {
  const { dir, cleanup } = await tempDir('metadata-');
  const svc = await openEmbedded(dir);
  try {
    await fn(svc, dir);
  } finally {
    await svc.close();
    await cleanup();
  }
}

/** Names containerd's identifiers package rejects. */
export const BAD_IDENTIFIERS = ['', '-x', 'x-', 'a..b', 'A_', '_a', '.a', 'a.', 'a b', 'a/b', 'a:b', 'ä', 'x'.repeat(77), 'a--b', 'a._b'];
/** Names it accepts (76 characters is the maximum). */
export const GOOD_IDENTIFIERS = ['a', 'A', '0', 'a.b', 'a_b', 'a-b', 'A1.b2_c3-d4', 'x'.repeat(76)];
/** Filter strings with syntax errors. */
export const BAD_FILTERS = ['name==', 'labels.', '==x', 'name=x', 'id==a,', 'labels."k==v', 'name~=(', 'labels.a/b==c'];

export const digestOf = (c: string) => `sha256:${c.repeat(64)}`;
