import { useEffect } from "preact/hooks";
import { currentMe, useAuth, useTeams } from "../auth";
import { pickableTeams, teamName } from "../logic";
import type { Role } from "../api";

/**
 * TeamPicker chooses the team that will own a new system or connection. It
 * shows only when the user may create it in more than one team (min role
 * there); otherwise the server's default applies and value stays unset.
 */
export function TeamPicker({
  value,
  onChange,
  what,
  min = "editor",
  prefer,
}: {
  value?: number;
  onChange: (id: number | undefined) => void;
  what: string;
  min?: Role;
  /** The team to start with, when the user may pick it. */
  prefer?: number;
}) {
  const me = currentMe(useAuth());
  const all = useTeams();
  const teams = me ? pickableTeams(me, all, min) : [];
  const ids = teams.map((t) => t.id).join(",");
  useEffect(() => {
    if (teams.length <= 1) onChange(undefined);
    else if (value === undefined || !teams.some((t) => t.id === value)) onChange((teams.find((t) => t.id === prefer) ?? teams[0]).id);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [ids]);
  if (teams.length <= 1) return null;
  return (
    <label class="field">
      <span>Team</span>
      <select name="team" value={value} onChange={(e) => onChange(Number((e.currentTarget as HTMLSelectElement).value))} data-testid="team-picker">
        {teams.map((t) => (
          <option key={t.id} value={t.id}>
            {t.name}
            {t.role ? ` (${t.role})` : ""}
          </option>
        ))}
      </select>
      <small class="muted">The team that owns the {what}: its members see it, its editors change it.</small>
    </label>
  );
}

/** TeamTag names a row's team, for lists of more than one team. */
export function TeamTag({ id }: { id?: number }) {
  const teams = useTeams();
  if (id === undefined || teams.length <= 1) return null;
  return <span class="tag team">{teamName(teams, id)}</span>;
}
