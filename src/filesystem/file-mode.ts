const S_IFMT = 0o170000;
const S_IFSOCK = 0o140000;
const S_IFLNK = 0o120000;
const S_IFBLK = 0o060000;
const S_IFDIR = 0o040000;
const S_IFCHR = 0o020000;
const S_IFIFO = 0o010000;
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_ISVTX = 0o1000;

/**
 * Go's os.FileMode.String() for a raw st_mode, as envd reports it in
 * EntryInfo.permissions: type letters from "dalTLDpSugct?" (only d, L, D, p, S,
 * u, g, c, t can occur on Linux) or "-", then rwxrwxrwx. Unlike ls: a symlink is
 * "L", a char device "Dc", setuid/setgid/sticky are letters in front, not s/t in place.
 */
export function goFileModeString(stMode: number): string {
  let letters = "";
  const fmt = stMode & S_IFMT;
  if (fmt === S_IFDIR) letters += "d";
  if (fmt === S_IFLNK) letters += "L";
  if (fmt === S_IFBLK || fmt === S_IFCHR) letters += "D";
  if (fmt === S_IFIFO) letters += "p";
  if (fmt === S_IFSOCK) letters += "S";
  if (stMode & S_ISUID) letters += "u";
  if (stMode & S_ISGID) letters += "g";
  if (fmt === S_IFCHR) letters += "c";
  if (stMode & S_ISVTX) letters += "t";
  if (letters === "") letters = "-";
  const rwx = "rwxrwxrwx";
  let perm = "";
  for (let i = 0; i < 9; i++) perm += stMode & (1 << (8 - i)) ? rwx[i] : "-";
  return letters + perm;
}
