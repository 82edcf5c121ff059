// Where in a pasted spec each of a 422's errors points: the field path it names (its `loc`, or,
// for errors a spec-level validator raised, the `field.path:` prefixes of its message) and the
// line of the spec text that holds that field.

const PREFIX = /^([A-Za-z_][\w-]*(?:\.[\w-]+)*): /;

/** The field path an error names (e.g. ["params", "kw_percent_on"]; [] for the whole spec) and
 *  its message without the path prefixes that repeat it. */
export function fieldError(error) {
  const loc = (error.loc ?? []).slice(error.loc?.[0] === "body" ? 1 : 0).map(String);
  let text = String(error.msg ?? "").replace(/^spec: /, "").replace(/^Value error, /, "");
  const path = [...loc];
  for (let match = PREFIX.exec(text); match; match = PREFIX.exec(text)) {
    for (const part of match[1].split(".")) {
      if (!loc.length && part !== path.at(-1)) path.push(part);
    }
    text = text.slice(match[0].length);
  }
  return { path, text };
}

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The index of the line of ``lines`` that holds the field at ``path`` (YAML or JSON, block or
 *  flow style): each key is looked for from its parent's line on; -1 when the first is absent. */
export function fieldLine(lines, path) {
  let line = -1;
  for (const part of path) {
    if (/^\d+$/.test(part)) continue;  // a list index: stay on the list's line
    const key = new RegExp(`(^|[\\s{,-])["']?${escape(part)}["']?\\s*:`);
    const found = lines.findIndex((text, index) => index >= Math.max(line, 0) && key.test(text));
    if (found < 0) break;
    line = found;
  }
  return line;
}
