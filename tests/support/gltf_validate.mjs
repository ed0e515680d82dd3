// The Khronos glTF validator on one file: prints its report as JSON (issues.numErrors counts errors).
// Usage: node gltf_validate.mjs <path to the gltf-validator package> <file.glb>
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const [packagePath, file] = process.argv.slice(2);
const validator = createRequire(import.meta.url)(packagePath);
const report = await validator.validateBytes(new Uint8Array(readFileSync(file)), {
  uri: file,
  maxIssues: 200,
  externalResourceFunction: () => Promise.reject(new Error("the file must be self-contained")),
});
console.log(JSON.stringify(report));
