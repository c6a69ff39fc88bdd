import { createHash, timingSafeEqual } from "node:crypto";

function digest(s: string): Buffer {
  return createHash("sha256").update(s, "utf8").digest();
}

/** The daemon's access token: unset until a flag or POST /init sets it. */
export class AccessToken {
  private value: string | undefined;
  private valueDigest: Buffer | undefined;

  constructor(initial?: string) {
    this.set(initial);
  }

  set(token: string | undefined): void {
    this.value = token || undefined;
    this.valueDigest = this.value === undefined ? undefined : digest(this.value);
  }

  isSet(): boolean {
    return this.value !== undefined;
  }

  /** The raw token, for signing; undefined when none is set. */
  get(): string | undefined {
    return this.value;
  }

  /** Constant-time comparison, whatever the candidate's length. */
  matches(candidate: string | undefined | null): boolean {
    if (this.valueDigest === undefined || candidate == null) return false;
    return timingSafeEqual(this.valueDigest, digest(candidate));
  }
}
