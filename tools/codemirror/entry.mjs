// What the console's page uses of CodeMirror 6, bundled by esbuild into
// web/static/vendor/codemirror.min.js as the global `CodeMirror`.
export { EditorView, basicSetup } from "codemirror";
export { EditorState, Compartment } from "@codemirror/state";
export { keymap, placeholder } from "@codemirror/view";
export { sql, PostgreSQL, StandardSQL } from "@codemirror/lang-sql";
export { setDiagnostics, lintGutter } from "@codemirror/lint";
