/** The liaison's Python package (this repository's src/liaison), embedded at `npm run build` (scripts/embed-python.mjs). */
export declare const PYTHON_FILES: Readonly<Record<string, string>>;
/** Python modules placed after everything else on sys.path: used only if no other has their name. */
export declare const FALLBACK_FILES: Readonly<Record<string, string>>;
