// An independent 3D Tiles reader (not terrafarm's code): walks a tileset.json and decodes every content GLB with
// glTF-Transform, with the meshoptimizer decoder for EXT_meshopt_compression and KHR_mesh_quantization
// dequantized through the node transform. Checks, failing with exit 1:
//   - geometric error falls strictly from parent to child;
//   - every content vertex, in the tileset frame (glTF Y-up turned Z-up), lies inside its tile's box and inside
//     the box of every tile above it (3D Tiles: a tile's volume encloses its descendants' content; boxes are
//     axis-aligned here, as terrafarm writes them, with half-axes of either sign).
// Writes OUT/decoded.json (each content's triangles as world positions, glTF frame, for the Rust tests to compare)
// and OUT/glb/<uri> (each content re-encoded without meshopt compression, for the Khronos validator).
// Usage: node .ci/tools/read-tileset.mjs TILESET_JSON OUT_DIR
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { NodeIO } from "@gltf-transform/core";
import { ALL_EXTENSIONS } from "@gltf-transform/extensions";
import { MeshoptDecoder } from "meshoptimizer";

const [tilesetPath, out] = process.argv.slice(2);
await MeshoptDecoder.ready;
const io = new NodeIO().registerExtensions(ALL_EXTENSIONS).registerDependencies({ "meshopt.decoder": MeshoptDecoder });
const base = dirname(tilesetPath);
const tileset = JSON.parse(readFileSync(tilesetPath, "utf8"));
const problems = [];
const decoded = {};
let contents = 0, triangles = 0;

function aabb(bv) {
  const b = bv.box;
  if (!b) throw new Error("expected box bounding volumes");
  return { min: [b[0] - Math.abs(b[3]), b[1] - Math.abs(b[7]), b[2] - Math.abs(b[11])], max: [b[0] + Math.abs(b[3]), b[1] + Math.abs(b[7]), b[2] + Math.abs(b[11])] };
}
const inside = (p, box, tol) => [0, 1, 2].every((k) => p[k] >= box.min[k] - tol && p[k] <= box.max[k] + tol);

function apply(m, v) {
  return [0, 1, 2].map((r) => m[r] * v[0] + m[4 + r] * v[1] + m[8 + r] * v[2] + m[12 + r]);
}

async function content(uri, boxes) {
  const doc = await io.readBinary(new Uint8Array(readFileSync(join(base, uri))));
  const tris = [];
  for (const node of doc.getRoot().listNodes()) {
    const mesh = node.getMesh();
    if (!mesh) continue;
    const m = node.getWorldMatrix();
    for (const prim of mesh.listPrimitives()) {
      const pos = prim.getAttribute("POSITION");
      const idx = prim.getIndices();
      const v = [];
      const world = [];
      for (let i = 0; i < pos.getCount(); i++) {
        const w = apply(m, pos.getElement(i, v));
        world.push(w);
        // glTF Y-up → 3D Tiles Z-up: (x, y, z) → (x, −z, y).
        const q = [w[0], -w[2], w[1]];
        for (const box of boxes) if (!inside(q, box, 1e-3)) problems.push(`${uri}: vertex ${q} outside the box ${JSON.stringify(box)} of its tile or one above it`);
      }
      for (let t = 0; t < idx.getCount(); t += 3) {
        tris.push([...world[idx.getScalar(t)], ...world[idx.getScalar(t + 1)], ...world[idx.getScalar(t + 2)]]);
      }
    }
  }
  contents++;
  triangles += tris.length;
  decoded[uri] = tris;
  for (const ext of doc.getRoot().listExtensionsUsed()) if (ext.extensionName === "EXT_meshopt_compression") ext.dispose();
  const dst = join(out, "glb", uri);
  mkdirSync(dirname(dst), { recursive: true });
  writeFileSync(dst, await io.writeBinary(doc));
}

async function walk(tile, parent) {
  const boxes = [...parent.boxes, aabb(tile.boundingVolume)];
  if (!(tile.geometricError < parent.error)) problems.push(`geometricError ${tile.geometricError} not below the parent's ${parent.error}`);
  if (tile.content) await content(tile.content.uri, boxes);
  for (const c of tile.children ?? []) await walk(c, { error: tile.geometricError, boxes });
}

mkdirSync(out, { recursive: true });
await walk(tileset.root, { error: tileset.geometricError + 1e-9, boxes: [] });
writeFileSync(join(out, "decoded.json"), JSON.stringify(decoded));
console.log(JSON.stringify({ contents, triangles, problems: problems.length }));
for (const p of problems.slice(0, 20)) console.error(p);
process.exit(problems.length ? 1 : 0);
