/**
 * undici, loaded on first use: its modules cost ~80 ms of start-up, and most
 * commands (content, images, snapshots, unpack) never talk to a registry.
 */
let mod: Promise<typeof import('undici')> | undefined;

export function undici(): Promise<typeof import('undici')> {
  return (mod ??= import('undici'));
}
