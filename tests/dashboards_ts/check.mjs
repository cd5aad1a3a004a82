// Type-checks Grafana dashboards against Grafana's own published types.
//
//   node check.mjs [DIR]        check every DIR/*.json (default: the repo's
//                               grafana/dashboards); exit 0 clean, 1 errors
//   node check.mjs --self-test  prove the check fails: broken copies of the
//                               shipped dashboards must each be refused
//
// Each dashboard becomes a TypeScript module in which the dashboard is a
// literal of @grafana/schema's `Dashboard` and each panel a literal of
// `Panel` (or `RowPanel`) whose `options` and `fieldConfig.defaults.custom`
// are the published types of its panel plugin (timeseries, stat, heatmap,
// table, ...). `tsc --strict` then refuses unknown keys (excess property
// checks: a key Grafana dropped, a typo), wrong types (`footer.fields: ""`)
// and values outside an enum. Errors are printed per dashboard and panel.
// The generated files go to a temporary directory that is removed.

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..");
const tsc = path.join(here, "node_modules", "typescript", "bin", "tsc");
const raw = "@grafana/schema/dist/esm/raw/composable";

/// Published option types per panel plugin id: [module, Options, FieldConfig
/// (null when the plugin has no custom field config)].
const plugins = {
  timeseries: ["timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen", "Options", "FieldConfig"],
  stat: ["stat/panelcfg/x/StatPanelCfg_types.gen", "Options", null],
  gauge: ["gauge/panelcfg/x/GaugePanelCfg_types.gen", "Options", null],
  bargauge: ["bargauge/panelcfg/x/BarGaugePanelCfg_types.gen", "Options", null],
  heatmap: ["heatmap/panelcfg/x/HeatmapPanelCfg_types.gen", "Options", "FieldConfig"],
  table: ["table/panelcfg/x/TablePanelCfg_types.gen", "Options", "FieldConfig"],
  "status-history": ["statushistory/panelcfg/x/StatusHistoryPanelCfg_types.gen", "Options", "FieldConfig"],
  "state-timeline": ["statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen", "Options", "FieldConfig"],
  barchart: ["barchart/panelcfg/x/BarChartPanelCfg_types.gen", "Options", "FieldConfig"],
  piechart: ["piechart/panelcfg/x/PieChartPanelCfg_types.gen", "Options", "FieldConfig"],
  text: ["text/panelcfg/x/TextPanelCfg_types.gen", "Options", null],
};

const ident = (s) => s.replace(/[^A-Za-z0-9]/g, "_");

/// Returns the TypeScript source for one dashboard and, per panel, the line
/// range of its literal (to name the panel in an error).
function generate(name, dash) {
  const lines = [];
  const spans = [];
  const used = new Set();
  const body = [];
  const emit = (text, what) => {
    const first = lines.length + body.length + 1;
    const chunk = text.split("\n");
    body.push(...chunk);
    if (what) spans.push({ first, last: first + chunk.length - 1, what });
  };
  const checkPanel = (p, where) => {
    const what = `${where}panel '${p.title ?? "?"}' (id ${p.id ?? "?"}, type ${p.type})`;
    if (p.type === "row") {
      const { panels: inner = [], ...row } = p;
      emit(`const ${ident(`row_${p.id}`)}_${body.length}: Plain<RowPanel> = ${JSON.stringify({ ...row, panels: [] }, null, 2)};`, what);
      for (const q of inner) checkPanel(q, `row '${p.title}' > `);
      return;
    }
    const plugin = plugins[p.type];
    if (!plugin) {
      emit(`// ${what}\nconst unknown_${body.length}: "a panel type with published types" = ${JSON.stringify(p.type)};`, what);
      return;
    }
    used.add(p.type);
    const ns = ident(p.type);
    const custom = plugin[2] ? `${ns}.${plugin[2]}` : "Record<string, never>";
    emit(`const panel_${ident(String(p.id))}_${body.length}: TypedPanel<${ns}.${plugin[1]}, ${custom}> = ${JSON.stringify(p, null, 2)};`, what);
  };
  const { panels = [], ...top } = dash;
  emit(`export const dashboard: Plain<Dashboard> = ${JSON.stringify({ ...top, panels: [] }, null, 2)};`, "the dashboard itself");
  for (const p of panels) checkPanel(p, "");
  lines.push(`// Generated from ${name} by tests/dashboards_ts/check.mjs.`);
  lines.push(`import type { Dashboard, Panel, RowPanel, FieldConfigSource } from "@grafana/schema";`);
  for (const t of used) lines.push(`import type * as ${ident(t)} from "${raw}/${plugins[t][0]}";`);
  lines.push(
    // JSON holds an enum's string value where the types name the enum: a
    // string enum E becomes the union of its values (`${E}`), recursively.
    `type Plain<T> = T extends string ? \`\${T}\`` +
      ` : T extends number | boolean | null | undefined ? T` +
      ` : T extends ReadonlyArray<infer U> ? Array<Plain<U>>` +
      ` : T extends object ? { [K in keyof T]: Plain<T[K]> } : T;`,
    `type TypedPanel<O, C> = Plain<Omit<Panel, "options" | "fieldConfig"> & {`,
    `  options?: O;`,
    `  fieldConfig?: Omit<FieldConfigSource, "defaults"> & {`,
    `    defaults: Omit<FieldConfigSource["defaults"], "custom"> & { custom?: C };`,
    `  };`,
    `}>;`,
  );
  // Line numbers of the spans were counted as if the header were empty.
  const offset = lines.length;
  for (const s of spans) {
    s.first += offset;
    s.last += offset;
  }
  return { source: [...lines, ...body, ""].join("\n"), spans };
}

/// Type-checks every *.json of `dir`; returns the error lines (empty when
/// all are clean).
function check(dir) {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith(".json")).sort();
  if (files.length === 0) return [`${dir}: no dashboards (*.json)`];
  const out = fs.mkdtempSync(path.join(here, ".gen-"));
  const errors = [];
  const spansOf = {};
  try {
    const inputs = [];
    for (const f of files) {
      let dash;
      try {
        dash = JSON.parse(fs.readFileSync(path.join(dir, f), "utf8"));
      } catch (e) {
        errors.push(`${f}: not valid JSON: ${e.message}`);
        continue;
      }
      const { source, spans } = generate(f, dash);
      const ts = `${f.replace(/\.json$/, "")}.ts`;
      fs.writeFileSync(path.join(out, ts), source);
      spansOf[ts] = { json: f, spans };
      inputs.push(ts);
    }
    fs.writeFileSync(
      path.join(out, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          target: "es2022",
          module: "esnext",
          moduleResolution: "bundler",
          skipLibCheck: true,
          typeRoots: [],
          types: [],
          baseUrl: here,
          paths: { "@grafana/schema": [path.join(here, "node_modules/@grafana/schema")] },
        },
        files: inputs,
      }),
    );
    // The generated files import @grafana/schema: resolve it from here.
    fs.symlinkSync(path.join(here, "node_modules"), path.join(out, "node_modules"));
    try {
      execFileSync(process.execPath, [tsc, "-p", out, "--pretty", "false"], { encoding: "utf8", stdio: "pipe" });
    } catch (e) {
      const text = `${e.stdout ?? ""}${e.stderr ?? ""}`;
      for (const line of text.split("\n")) {
        const m = line.match(/^(?:.*[\\/])?([^\\/()]+\.ts)\((\d+),(\d+)\): (error .*)$/);
        if (!m) {
          if (line.trim() && !line.startsWith(" ")) errors.push(line);
          else if (line.trim() && errors.length) errors[errors.length - 1] += ` ${line.trim()}`;
          continue;
        }
        const info = spansOf[m[1]];
        const at = Number(m[2]);
        const span = info?.spans.find((s) => at >= s.first && at <= s.last);
        errors.push(`${info ? info.json : m[1]}: ${span ? span.what : `line ${at}`}: ${m[4]}`);
      }
      if (errors.length === 0) errors.push(`tsc failed: ${text.trim() || e.message}`);
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
  return errors;
}

/// Broken copies of the shipped dashboards, each of which must be refused.
function selfTest() {
  const shipped = path.join(repo, "grafana", "dashboards");
  const load = (f) => JSON.parse(fs.readFileSync(path.join(shipped, f), "utf8"));
  const walk = (ps, out = []) => {
    for (const p of ps) {
      out.push(p);
      walk(p.panels ?? [], out);
    }
    return out;
  };
  const firstOf = (d, type) => walk(d.panels).find((p) => p.type === type);
  const cases = [
    ["a top-level key Grafana dropped (style)", "alb-overview.json", (d) => { d.style = "dark"; }],
    ["heatmap tooltip.show (dropped)", "alb-scheduling.json", (d) => { firstOf(d, "heatmap").options.tooltip.show = true; }],
    ["table footer.fields as a string", "alb-cluster.json", (d) => {
      firstOf(d, "table").options.footer = { show: false, reducer: ["sum"], fields: "" };
    }],
    ["a legend display mode outside the enum", "alb-overview.json", (d) => {
      firstOf(d, "timeseries").options.legend.displayMode = "sideways";
    }],
    ["a misspelt field config key", "alb-workers.json", (d) => { firstOf(d, "timeseries").fieldConfig.defaults.unitt = "s"; }],
    ["a panel type with no published types", "alb-overview.json", (d) => { d.panels[1].type = "graph"; }],
    ["gridPos width as a string", "alb-overview.json", (d) => { d.panels[1].gridPos.w = "12"; }],
  ];
  const clean = check(shipped);
  if (clean.length) {
    console.log(`self-test: the shipped dashboards do not pass:\n  ${clean.join("\n  ")}`);
    return 1;
  }
  // Every broken copy in one directory, under its own name: one tsc run.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "alb-dash-broken-"));
  let failed = 0;
  try {
    const names = cases.map(([, file, breakIt], i) => {
      const d = load(file);
      breakIt(d);
      const name = `case${i}-${file}`;
      fs.writeFileSync(path.join(dir, name), JSON.stringify(d, null, 2));
      return name;
    });
    const errors = check(dir);
    cases.forEach(([what, file], i) => {
      const mine = errors.filter((e) => e.startsWith(`${names[i]}:`));
      if (mine.length === 0) {
        console.log(`self-test: NOT refused: ${what} in ${file}`);
        ++failed;
      } else {
        console.log(`self-test: refused ${what}: ${mine[0].slice(0, 300)}`);
      }
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(failed ? `self-test: ${failed} broken dashboard(s) passed` : `self-test: all ${cases.length} broken copies refused`);
  return failed ? 1 : 0;
}

if (!fs.existsSync(tsc)) {
  console.error(`check.mjs: ${tsc} missing: run 'npm ci' in ${here}`);
  process.exit(2);
}
if (process.argv[2] === "--self-test") {
  process.exit(selfTest());
}
const dir = path.resolve(process.argv[2] ?? path.join(repo, "grafana", "dashboards"));
const errors = check(dir);
if (errors.length) {
  console.log(`${errors.length} error(s) against @grafana/schema:\n  ${errors.join("\n  ")}`);
  process.exit(1);
}
console.log(`${dir}: every dashboard and panel matches @grafana/schema`);
