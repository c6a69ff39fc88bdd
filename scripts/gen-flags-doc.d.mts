import type { FlagSpec } from "../src/config.ts";
/** One markdown table of every flag, in FLAGS order. */
export function flagsTable(flags: readonly FlagSpec[]): string;
/** The document with the text between the flags markers replaced by the table. */
export function withFlagsTable(doc: string, flags: readonly FlagSpec[]): string;
