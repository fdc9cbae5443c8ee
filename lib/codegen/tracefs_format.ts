/** A tracepoint's record layout, as its tracefs `format` file describes it. */
export interface FormatField {
  /** The C declaration's type, e.g. "const char *", "char[16]", "__data_loc char[]". */
  type: string;
  name: string;
  offset: number;
  size: number;
  signed: boolean;
  /** common_type, common_pid, ...: the header every tracepoint record has. */
  common: boolean;
}

export interface TracepointFormat {
  name: string;
  id: number;
  fields: FormatField[];
}

/** Parses `events/CATEGORY/NAME/format` text; `where` names it in errors. */
export function parseFormat(text: string, where: string): TracepointFormat {
  const name = /^name: (\S+)$/m.exec(text)?.[1];
  const id = /^ID: (\d+)$/m.exec(text)?.[1];
  if (!name || !id) throw new Error(`${where}: not a tracepoint format file (no name/ID lines)`);
  const fields: FormatField[] = [];
  for (const m of text.matchAll(/field:([^;]+);\s*offset:(\d+);\s*size:(\d+);\s*signed:(\d);/g)) {
    const decl = m[1].trim();
    // "const char * filename", "char comm[16]", "__data_loc char[] name", "int common_pid".
    const d = /^(.*?)\s*\b([A-Za-z_]\w*)\s*(\[[^\]]*\])?$/.exec(decl);
    if (!d) throw new Error(`${where}: cannot read field declaration '${decl}'`);
    const type = d[1].trim() + (d[3] ?? "");
    fields.push({
      type,
      name: d[2],
      offset: Number(m[2]),
      size: Number(m[3]),
      signed: m[4] === "1",
      common: d[2].startsWith("common_"),
    });
  }
  return { name, id: Number(id), fields };
}
