/** The terminal page. Its paths are relative, so it also works behind a proxy that keeps the path. */
export const TERMINAL_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>envd-ts terminal</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="terminal/terminal.css">
<script src="terminal/terminal.js" defer></script>
</head>
<body>
<div id="status" role="status">connecting…</div>
<div id="terminal"></div>
</body>
</html>
`;

/** Scripts and styles from this daemon only; xterm.js sets inline styles. */
export const TERMINAL_CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";
