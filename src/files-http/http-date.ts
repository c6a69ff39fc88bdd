/**
 * HTTP dates as Go's net/http reads and writes them (http.ParseTime accepts the
 * IMF-fixdate, RFC 850 and ANSI C forms; anything else is "no date").
 */

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const LONG_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTH_RE = MONTHS.join("|");

const IMF_FIXDATE = new RegExp(`^(?:${DAYS.join("|")}), (\\d{2}) (${MONTH_RE}) (\\d{4}) (\\d{2}):(\\d{2}):(\\d{2}) GMT$`);
const RFC850 = new RegExp(`^(?:${LONG_DAYS.join("|")}), (\\d{2})-(${MONTH_RE})-(\\d{2}) (\\d{2}):(\\d{2}):(\\d{2}) [A-Z]{3,5}$`);
const ANSIC = new RegExp(`^(?:${DAYS.join("|")}) (${MONTH_RE}) ( \\d|\\d{1,2}) (\\d{2}):(\\d{2}):(\\d{2}) (\\d{4})$`);

function build(year: number, month: string, day: number, h: number, m: number, s: number): number | undefined {
  const mi = MONTHS.indexOf(month);
  if (h > 23 || m > 59 || s > 59 || day < 1) return undefined;
  const daysInMonth = new Date(Date.UTC(year, mi + 1, 0)).getUTCDate();
  if (day > daysInMonth) return undefined;
  const d = new Date(0);
  d.setUTCFullYear(year, mi, day);
  d.setUTCHours(h, m, s, 0);
  return Math.floor(d.getTime() / 1000);
}

/** Seconds since the epoch for an HTTP date, or undefined when Go would not parse it. */
export function parseHttpDate(text: string): number | undefined {
  let r = IMF_FIXDATE.exec(text);
  if (r) return build(Number(r[3]), r[2]!, Number(r[1]), Number(r[4]), Number(r[5]), Number(r[6]));
  r = RFC850.exec(text);
  if (r) {
    // Go reads the zone abbreviation with a zero offset unless the local zone defines it; the daemon runs in UTC.
    const yy = Number(r[3]);
    return build(yy >= 69 ? 1900 + yy : 2000 + yy, r[2]!, Number(r[1]), Number(r[4]), Number(r[5]), Number(r[6]));
  }
  r = ANSIC.exec(text);
  if (r) return build(Number(r[6]), r[1]!, Number(r[2]!.trim()), Number(r[3]), Number(r[4]), Number(r[5]));
  return undefined;
}

/** Go's http.TimeFormat for Last-Modified. */
export function formatHttpDate(ms: number): string {
  return new Date(ms).toUTCString();
}
