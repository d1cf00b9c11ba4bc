// The parts of the system form built from a connector kind's spec
// (GET /api/connector-kinds): one input per setting, required ones marked,
// defaults as placeholders, descriptions as help, secrets as password fields.
// The settings JSON stays the one state, so the expert JSON editor and the
// form always agree.
import type { ConnectorSetting, ConnectorSpec } from "../api";

export type Secrets = { k: string; v: string }[];

export function parseSettings(text: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(text);
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

// setSetting returns the settings JSON with one key set (or removed when empty).
export function setSetting(text: string, name: string, value: unknown): string {
  const obj = { ...(parseSettings(text) ?? {}) };
  if (value === undefined || value === "") delete obj[name];
  else obj[name] = value;
  return JSON.stringify(obj, null, 2);
}

function SettingInput({ s, value, onChange }: { s: ConnectorSetting; value: unknown; onChange: (v: unknown) => void }) {
  const name = `setting-${s.name}`;
  if (s.type === "boolean") {
    return <input type="checkbox" name={name} checked={value === true} onChange={(e) => onChange((e.currentTarget as HTMLInputElement).checked || undefined)} />;
  }
  if (s.enum?.length) {
    return (
      <select name={name} value={value === undefined ? "" : String(value)} onChange={(e) => onChange((e.currentTarget as HTMLSelectElement).value)}>
        <option value="">{s.default ? `(default: ${s.default})` : "(none)"}</option>
        {s.enum.map((v) => (
          <option key={v} value={v}>
            {v}
          </option>
        ))}
      </select>
    );
  }
  if (s.type === "list" || s.type === "object") {
    return (
      <textarea
        name={name}
        class="mono"
        rows={3}
        placeholder={s.type === "list" ? "[ … ] (JSON)" : "{ … } (JSON)"}
        value={value === undefined ? "" : JSON.stringify(value)}
        onChange={(e) => {
          const t = (e.currentTarget as HTMLTextAreaElement).value.trim();
          if (!t) return onChange(undefined);
          try {
            onChange(JSON.parse(t));
          } catch {
            /* left as typed; the JSON editor shows the stored value */
          }
        }}
      />
    );
  }
  return (
    <input
      name={name}
      inputMode={s.type === "integer" ? "numeric" : undefined}
      placeholder={s.default ?? ""}
      value={value === undefined ? "" : String(value)}
      onInput={(e) => {
        const t = (e.currentTarget as HTMLInputElement).value;
        onChange(s.type === "integer" && t.trim() !== "" && !Number.isNaN(Number(t)) ? Number(t) : t);
      }}
    />
  );
}

export function SettingsFields({ spec, settings, onChange }: { spec: ConnectorSpec; settings: string; onChange: (text: string) => void }) {
  const obj = parseSettings(settings);
  if (!obj) return <div class="inline-error">The settings are not a JSON object: fix them in the JSON editor.</div>;
  return (
    <div data-testid="settings-fields">
      {spec.settings.map((s) => (
        <label class="field" key={s.name}>
          <span>
            <code>{s.name}</code>
            {s.required && <strong title="required"> *</strong>} <small class="muted">{s.type}</small>
          </span>
          <SettingInput s={s} value={obj[s.name]} onChange={(v) => onChange(setSetting(settings, s.name, v))} />
          {(s.description || s.default) && (
            <small class="muted">
              {s.description}
              {s.default ? ` Default: ${s.default}.` : ""}
            </small>
          )}
        </label>
      ))}
    </div>
  );
}

export function SecretFields({ spec, secrets, onChange }: { spec: ConnectorSpec; secrets: Secrets; onChange: (s: Secrets) => void }) {
  const value = (k: string) => secrets.find((s) => s.k === k)?.v ?? "";
  const set = (k: string, v: string) => onChange([...secrets.filter((s) => s.k !== k && s.k.trim()), ...(v ? [{ k, v }] : [])]);
  if (!spec.secrets.length) return <p class="muted small">This connector takes no secrets.</p>;
  return (
    <>
      {spec.secrets.map((s) => (
        <label class="field" key={s.name}>
          <span>
            <code>{s.name}</code>
            {s.required && <strong title="required"> *</strong>}
          </span>
          <input type="password" autoComplete="new-password" name={`secret-${s.name}`} aria-label={`secret ${s.name}`} value={value(s.name)} onInput={(e) => set(s.name, (e.currentTarget as HTMLInputElement).value)} />
          {s.description && <small class="muted">{s.description}</small>}
        </label>
      ))}
    </>
  );
}
