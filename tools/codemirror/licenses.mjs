// Writes the licenses of every package esbuild put into the bundle (from its
// metafile) into one file, each under its name and version.
import { readFileSync, writeFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

const [meta, out] = process.argv.slice(2);
const inputs = Object.keys(JSON.parse(readFileSync(meta, "utf8")).inputs);
const dirs = new Set();
for (const input of inputs) {
  const m = input.match(/^(node_modules\/(?:@[^/]+\/)?[^/]+)\//);
  if (m) dirs.add(m[1]);
}
const parts = [
  "Licenses of the packages bundled into codemirror.min.js (make vendor-codemirror).\n",
];
for (const dir of [...dirs].sort()) {
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const file = readdirSync(dir).find((f) => /^licen[cs]e/i.test(f));
  const text = file ? readFileSync(join(dir, file), "utf8").trim() : `(no license file; package.json says ${pkg.license})`;
  parts.push(`## ${pkg.name} ${pkg.version} (${pkg.license})\n\n${text}\n`);
}
writeFileSync(out, parts.join("\n"));
console.log(`${dirs.size} packages: ${[...dirs].map((d) => d.replace("node_modules/", "")).join(", ")}`);
