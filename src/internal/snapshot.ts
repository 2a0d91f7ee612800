/**
 * snapshot: the CLI can start from a V8 startup snapshot (built by
 * scripts/bundle.mjs as build/bin/dist.blob, used by bin/dist): its modules
 * were evaluated when the snapshot was built, in another process. Module
 * state that belongs to the running process (a loaded native addon) is
 * therefore made through onStartup, and the entry point through runMain.
 * The rule for every module the CLI loads at startup: nothing at module
 * scope reads the process (environment, cores, cwd, time); ask when called.
 */
import { fileURLToPath } from 'node:url';
import { startupSnapshot } from 'node:v8';

/** Whether this code runs to build a snapshot (asked each time: a deserialized snapshot runs the same code). */
function building(): boolean {
  return Boolean(startupSnapshot?.isBuildingSnapshot?.()); // Node 20 answers 1 or 0
}

let fromSnapshot = false;

/** Whether this process started from a startup snapshot. */
export function startedFromSnapshot(): boolean {
  return fromSnapshot;
}

/** Runs fn now, or, while a snapshot is being built, when it is deserialized (before main). */
export function onStartup(fn: () => void): void {
  if (building()) startupSnapshot.addDeserializeCallback(fn);
  else fn();
}

/**
 * Runs main now, or makes it the snapshot's entry point. A process started
 * from a snapshot has no script in process.argv (argv[1] is the first
 * argument): the bundle's path is put back, so argv looks the same either way.
 */
export function runMain(main: () => unknown): void {
  if (!building()) {
    void main();
    return;
  }
  const script = fileURLToPath(import.meta.url);
  startupSnapshot.setDeserializeMainFunction(() => {
    fromSnapshot = true;
    process.argv.splice(1, 0, script);
    void main();
  });
}
