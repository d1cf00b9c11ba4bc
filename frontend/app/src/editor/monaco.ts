// The code editor: Monaco, loaded only by the views that edit code (a
// dynamic import of this module). Only the editor core, JavaScript and the
// TypeScript language service (for completion from the served script API)
// are bundled; the workers are bundled by Vite, nothing comes from a CDN.
import "monaco-editor/esm/vs/editor/edcore.main"; // the editor with all its features, no languages
import * as monaco from "monaco-editor/esm/vs/editor/editor.api";
import "monaco-editor/esm/vs/language/typescript/monaco.contribution";
import "monaco-editor/esm/vs/basic-languages/javascript/javascript.contribution";
import EditorWorker from "monaco-editor/esm/vs/editor/editor.worker?worker";
import TsWorker from "monaco-editor/esm/vs/language/typescript/ts.worker?worker";
import type { FieldSpec } from "../api";
import { markerRange } from "../logic";

(self as unknown as { MonacoEnvironment: monaco.Environment }).MonacoEnvironment = {
  getWorker(_id: string, label: string) {
    return label === "typescript" || label === "javascript" ? new TsWorker() : new EditorWorker();
  },
};

export { monaco };

// Monaco cancels the work of an editor that goes away (a tab switch, a
// diff closed) by rejecting its promises with a CancellationError, some of
// them unawaited: that is its normal flow, not an error, and would show as
// "Uncaught (in promise) Canceled" in every console.
window.addEventListener("unhandledrejection", (ev) => {
  const r = ev.reason as { name?: unknown; message?: unknown } | null;
  if (r && r.name === "Canceled" && r.message === "Canceled") ev.preventDefault();
});

const js = monaco.languages.typescript.javascriptDefaults;
js.setCompilerOptions({
  target: monaco.languages.typescript.ScriptTarget.ES2020,
  allowNonTsExtensions: true,
  allowJs: true,
  lib: ["es2020"], // no DOM: scripts run in a sandbox without it
  noLib: false,
});
// Syntax errors from the local worker; the server's compile check adds its own markers.
js.setDiagnosticsOptions({ noSemanticValidation: true, noSyntaxValidation: false });
js.setEagerModelSync(true);

let apiLoaded = false;
/** addScriptAPI makes entity., replica., ctx. and the helpers complete with their docs. */
export function addScriptAPI(dts: string) {
  if (apiLoaded) return;
  apiLoaded = true;
  js.addExtraLib(dts, "file:///duplex/script-api.d.ts");
}

// ---- triggers: expr (https://expr-lang.org) ----

export const EXPR = "duplex-expr";
const fieldsByModel = new Map<string, FieldSpec[]>();

monaco.languages.register({ id: EXPR });
monaco.languages.setMonarchTokensProvider(EXPR, {
  keywords: ["in", "not", "and", "or", "matches", "contains", "startsWith", "endsWith", "true", "false", "nil", "let"],
  tokenizer: {
    root: [
      [/[a-zA-Z_$][\w$]*/, { cases: { "@keywords": "keyword", "@default": "identifier" } }],
      [/"([^"\\]|\\.)*"/, "string"],
      [/'([^'\\]|\\.)*'/, "string"],
      [/`[^`]*`/, "string"],
      [/\d+(\.\d+)?/, "number"],
      [/\/\/.*$/, "comment"],
      [/[=!<>]=?|&&|\|\||[+\-*/%^?:.]/, "operator"],
    ],
  },
});
monaco.languages.setLanguageConfiguration(EXPR, {
  brackets: [["(", ")"], ["[", "]"], ["{", "}"]],
  autoClosingPairs: [{ open: "(", close: ")" }, { open: "[", close: "]" }, { open: '"', close: '"' }],
});
monaco.languages.registerCompletionItemProvider(EXPR, {
  provideCompletionItems(model, position) {
    const word = model.getWordUntilPosition(position);
    const range = { startLineNumber: position.lineNumber, endLineNumber: position.lineNumber, startColumn: word.startColumn, endColumn: word.endColumn };
    const fields = fieldsByModel.get(model.uri.toString()) ?? [];
    const K = monaco.languages.CompletionItemKind;
    const suggestions: monaco.languages.CompletionItem[] = [
      { label: "id", kind: K.Field, insertText: "id", detail: "string", documentation: "the entity's id in its system", range },
      { label: "key", kind: K.Field, insertText: "key", detail: "string", documentation: "the entity's key, e.g. T-12", range },
      ...fields.map((f) => ({ label: f.name, kind: K.Field, insertText: f.name, detail: f.type, documentation: f.description || `${f.type} field`, range })),
      ...["in", "not", "and", "or", "matches", "contains", "startsWith", "endsWith", "true", "false", "nil"].map((k) => ({
        label: k,
        kind: K.Keyword,
        insertText: k,
        range,
      })),
      ...["len", "lower", "upper", "trim", "any", "all", "none", "filter", "now", "date", "duration"].map((f) => ({
        label: f,
        kind: K.Function,
        insertText: f + "($0)",
        insertTextRules: monaco.languages.CompletionItemInsertTextRule.InsertAsSnippet,
        detail: "expr built-in",
        range,
      })),
    ];
    return { suggestions };
  },
});

// ---- one editor ----

export interface EditorOptions {
  value: string;
  language: "javascript" | typeof EXPR;
  path: string; // a unique model path, e.g. conn-3/a/outgoing.js
  fields?: FieldSpec[];
  readOnly?: boolean;
  onChange?: (value: string) => void;
  onSave?: () => void;
}

export interface Editor {
  editor: monaco.editor.IStandaloneCodeEditor;
  setValue(v: string): void;
  getValue(): string;
  /** setError underlines a server-reported position; null clears it. */
  setError(err: { line: number; column: number; message: string } | null): void;
  dispose(): void;
}

monaco.editor.defineTheme("duplex", {
  base: "vs",
  inherit: true,
  rules: [],
  colors: { "editor.background": "#fbfcfd", "editorLineNumber.foreground": "#a0a7b4", "editorGutter.background": "#f4f6f8" },
});

export function createEditor(el: HTMLElement, o: EditorOptions): Editor {
  const uri = monaco.Uri.parse("file:///" + o.path);
  monaco.editor.getModel(uri)?.dispose();
  const model = monaco.editor.createModel(o.value, o.language, uri);
  if (o.fields) fieldsByModel.set(uri.toString(), o.fields);
  const single = o.language === EXPR;
  const editor = monaco.editor.create(el, {
    model,
    theme: "duplex",
    readOnly: o.readOnly,
    automaticLayout: true,
    minimap: { enabled: false },
    fontSize: 13,
    lineHeight: 20,
    scrollBeyondLastLine: false,
    renderLineHighlight: single ? "none" : "line",
    lineNumbers: single ? "off" : "on",
    glyphMargin: false,
    folding: !single,
    lineDecorationsWidth: single ? 6 : 10,
    wordWrap: "on", // long lines wrap: the panes are narrow, two flows side by side (issue 19)
    tabSize: 2,
    fixedOverflowWidgets: true,
    scrollbar: { alwaysConsumeMouseWheel: false },
    padding: { top: 6, bottom: 6 },
  });
  const sub = model.onDidChangeContent(() => o.onChange?.(model.getValue()));
  if (o.onSave) editor.addCommand(monaco.KeyMod.CtrlCmd | monaco.KeyCode.KeyS, () => o.onSave?.());
  return {
    editor,
    setValue(v) {
      if (v !== model.getValue()) model.setValue(v);
    },
    getValue: () => model.getValue(),
    setError(err) {
      if (!err) {
        monaco.editor.setModelMarkers(model, "duplex", []);
        return;
      }
      const r = markerRange(model.getLinesContent(), err.line, err.column);
      monaco.editor.setModelMarkers(model, "duplex", [{ ...r, message: err.message, severity: monaco.MarkerSeverity.Error, source: "duplex" }]);
    },
    dispose() {
      sub.dispose();
      fieldsByModel.delete(uri.toString());
      editor.dispose();
      model.dispose();
    },
  };
}
