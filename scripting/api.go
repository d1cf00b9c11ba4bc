package scripting

import (
	"fmt"
	"strings"
)

// Decl describes one name a script sees. The list below is the single
// description of the script API: the editor's TypeScript declarations are
// generated from it, and a test checks it against what a runtime holds.
type Decl struct {
	Name   string
	TS     string // the TypeScript declaration after the name
	Doc    string
	Global bool // on the runtime's global object (else a parameter of the script)
	Only   Kind // "" = every kind of script; otherwise only that kind
}

// API is the script API, in the order the declarations are written.
var API = []Decl{
	{Name: "entity", TS: ": Entity", Doc: "Outgoing: the changed entity (read-only). Incoming: the local entity to change; empty on the first sync."},
	{Name: "previous", TS: ": Replica | null", Doc: "The replica sent the last time in this direction, or null."},
	{Name: "replica", TS: ": Replica", Doc: "Outgoing: fill it with what the other side should get. Incoming: what arrived (read-only)."},
	{Name: "ctx", TS: ": { readonly connection: string; readonly side: \"a\" | \"b\"; readonly firstSync: boolean }", Doc: "The connection's name, the side this script runs on, and whether the other side has no counterpart yet."},
	{Name: "log", TS: "(...args: unknown[]): void", Doc: "Adds a line to the sync event's log (objects are JSON-encoded; up to 200 lines, 64 KiB)."},
	{Name: "skip", TS: "(reason?: string): never", Doc: "Incoming only: do not apply this event; it ends as skipped with the reason.", Only: KindIncoming},
	{Name: "fail", TS: "(message?: string): never", Doc: "Stops the script and fails the sync event with the message (it waits in the error list).", Global: true},
	{Name: "mapValue", TS: "<T = unknown>(value: unknown, table: Record<string, T>, fallback?: T): T", Doc: "Looks value up in table (status, priority, user maps). Without a match: fallback when given, else value itself.", Global: true},
	{Name: "mergeComments", TS: "(existing: Comment[], incoming: Comment[], options?: { prefix?: string; authorInBody?: boolean; private?: boolean }): Comment[]", Doc: "existing plus the incoming comments whose id it does not have; their body gets the prefix and, with authorInBody, \"author: \" in front; with private, they are added as internal notes. Ids are kept so Duplex links them.", Global: true},
	{Name: "htmlToText", TS: "(html: string): string", Doc: "Plain text from HTML: paragraphs and <br> become line breaks, list items \"- \", tags are dropped, entities decoded.", Global: true},
	{Name: "textToHtml", TS: "(text: string): string", Doc: "HTML from plain text: escaped, blank lines make paragraphs, line breaks <br>.", Global: true},
	{Name: "formatDate", TS: "(value: string | Date, layout?: string, timeZone?: string): string", Doc: "Writes a date (RFC 3339 text or Date) in timeZone (IANA name, default UTC). layout: \"iso\" (default), \"date\", \"datetime\", \"time\", or tokens YYYY MM DD HH mm ss.", Global: true},
	{Name: "parseDate", TS: "(text: string, layout?: string, timeZone?: string): string | null", Doc: "Reads text written in layout in timeZone (default UTC); returns RFC 3339 in UTC, null for empty text.", Global: true},
	{Name: "console", TS: ": { log: typeof log; info: typeof log; warn: typeof log; error: typeof log; debug: typeof log }", Doc: "The same as log.", Global: true},
}

const dtsTypes = `/** A comment on an entity. */
interface Comment {
  readonly id?: string;
  readonly author?: string;
  readonly body: string;
  readonly created_at?: string;
  /** An internal note: a Redmine private note, a Request Tracker comment (not correspondence). Set it on a comment you add to make it internal. */
  readonly private?: boolean;
}

/** A file on an entity (metadata; Duplex streams the bytes). */
interface Attachment {
  readonly id: string;
  readonly name: string;
  /** Bytes. */
  readonly size: number;
  readonly content_type?: string;
  /** Hex SHA-256 of the bytes, when the system gives one (not Redmine or RT, which do not list one). */
  readonly sha256?: string;
}

/** An entity: its fields by name, plus these. */
interface Entity {
  readonly id: string;
  readonly key: string;
  readonly url: string;
  readonly type: string;
  readonly updated_at?: string;
  readonly updated_by?: string;
  comments: Comment[];
  /** Its files. An outgoing script sends some along with replica.attachments = entity.attachments.filter(...); in an incoming script, the target's files (read only). */
  readonly attachments: Attachment[];
  [field: string]: unknown;
}

/** What crosses to the other side: plain JSON values only. */
interface Replica {
  [key: string]: unknown;
}
`

// Declarations returns the script API as a TypeScript declaration file, for
// the editor's completion.
func Declarations() string {
	var b strings.Builder
	b.WriteString("// Duplex script API. Generated from scripting.API; do not edit.\n\n")
	b.WriteString(dtsTypes)
	for _, d := range API {
		doc := d.Doc
		if d.Only != "" {
			doc += fmt.Sprintf(" (%s scripts only)", d.Only)
		}
		fmt.Fprintf(&b, "\n/** %s */\n", doc)
		if strings.HasPrefix(d.TS, ":") {
			fmt.Fprintf(&b, "declare const %s%s;\n", d.Name, d.TS)
		} else {
			fmt.Fprintf(&b, "declare function %s%s;\n", d.Name, d.TS)
		}
	}
	return b.String()
}
