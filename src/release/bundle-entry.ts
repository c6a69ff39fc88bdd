// The entry point of release/envd.cjs and the single executable. Import order matters: the
// native directory is set before any module that loads native code is evaluated.
import "./release-setup.js";
import "../main.js";
