let bundled = false;

/** Called by the release entry point: every JavaScript module is in the bundle, none is read from disk. */
export function markBundled(): void {
  bundled = true;
}

/** Whether this daemon runs from the release bundle (envd.cjs or the single executable). */
export function isBundled(): boolean {
  return bundled;
}
