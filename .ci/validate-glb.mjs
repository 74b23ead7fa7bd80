// Runs the Khronos glTF validator over every .glb under the given folders; exits 1 on any error or warning.
// Usage: node .ci/validate-glb.mjs DIR...   (gltf-validator installed under .ci/tools)
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";

const require = createRequire(join(process.cwd(), ".ci/tools/package.json"));
const validator = require("gltf-validator");

function* walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) yield* walk(p);
    else if (name.endsWith(".glb")) yield p;
  }
}

let files = 0, bad = 0;
for (const root of process.argv.slice(2)) {
  for (const p of walk(root)) {
    files++;
    const report = await validator.validateBytes(new Uint8Array(readFileSync(p)), { maxIssues: 20 });
    const { numErrors, numWarnings, messages } = report.issues;
    if (numErrors > 0 || numWarnings > 0) {
      bad++;
      console.error(`${p}: ${numErrors} errors, ${numWarnings} warnings`);
      for (const m of messages.filter((m) => m.severity <= 1)) console.error(`  ${m.code} ${m.pointer ?? ""}: ${m.message}`);
    }
  }
}
console.log(`gltf-validator: ${files} GLB files checked, ${bad} with errors or warnings`);
if (files === 0) { console.error("gltf-validator: no GLB files found"); process.exit(1); }
process.exit(bad ? 1 : 0);
