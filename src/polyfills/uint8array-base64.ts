/**
 * Uint8Array.prototype.toBase64 (ES2026, in V8 from Node 25) for Node 20, on
 * Buffer's native encoder. @bufbuild/protobuf uses the native method when it
 * exists when it loads, and otherwise encodes bytes fields for JSON one character
 * at a time: every output chunk the e2b SDK receives (Connect JSON) went through
 * that loop, and the daemon spent most of a streaming run there (bench/NOTES.md).
 * Must be evaluated before @bufbuild/protobuf: main.ts imports it first.
 */

type Alphabet = "base64" | "base64url";
interface ToBase64Options {
  alphabet?: Alphabet;
  omitPadding?: boolean;
}

declare global {
  interface Uint8Array {
    toBase64?(options?: ToBase64Options): string;
  }
}

if (typeof Uint8Array.prototype.toBase64 !== "function") {
  Object.defineProperty(Uint8Array.prototype, "toBase64", {
    configurable: true,
    writable: true,
    enumerable: false,
    value: function toBase64(this: Uint8Array, options?: ToBase64Options): string {
      if (!(this instanceof Uint8Array)) throw new TypeError("toBase64 called on a non-Uint8Array");
      const alphabet = options?.alphabet ?? "base64";
      if (alphabet !== "base64" && alphabet !== "base64url") throw new TypeError(`unknown alphabet ${String(alphabet)}`);
      const omitPadding = options?.omitPadding === true;
      const buf = Buffer.from(this.buffer, this.byteOffset, this.byteLength);
      if (alphabet === "base64") {
        const s = buf.toString("base64");
        return omitPadding ? s.replace(/=+$/, "") : s;
      }
      // Node's base64url never pads; the standard method pads unless told not to.
      const s = buf.toString("base64url");
      return omitPadding || s.length % 4 === 0 ? s : s + "=".repeat(4 - (s.length % 4));
    },
  });
}

export {};
