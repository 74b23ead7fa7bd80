// Expands a 3D Tiles tileset with implicit tiling into the equivalent explicit tileset, with CesiumGS's own
// 3d-tiles-tools (its TilesetTraverser reads the subtree files, derives each tile's box by subdivision, its
// geometric error and its content URI from the templates: none of it is terrafarm's code). Every available tile
// becomes an explicit tile (the tile declaring the implicit tree is replaced by the tree's root); the output goes next to the input so content URIs resolve the same, and can be walked
// by read-tileset.mjs. Prints a JSON summary: tiles, contents, deepest level.
// Usage: node .ci/tools/expand-implicit.mjs VALIDATOR_DIR IN_TILESET_JSON OUT_TILESET_JSON
// (VALIDATOR_DIR: the installed 3d-tiles-validator, whose node_modules hold 3d-tiles-tools.)
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";

const [pkg, input, output] = process.argv.slice(2);
const tools = createRequire(join(resolve(pkg), "package.json"))("3d-tiles-tools");
const { TilesetTraverser, ResourceResolvers } = tools;
const tileset = JSON.parse(readFileSync(input, "utf8"));
const base = dirname(resolve(input));
const traverser = new TilesetTraverser(base, ResourceResolvers.createFileResourceResolver(base), { depthFirst: true });
const made = new Map();
let root = null, tiles = 0, contents = 0, deepest = 0;
await traverser.traverse(tileset, async (t) => {
  if (t.isImplicitTilesetRoot()) {
    // The tile that declares implicit tiling stands for the tree's root, which the traverser visits next as its
    // only child (content URI resolved): that child takes its place under this tile's parent.
    const parent = t.getParent();
    if (!parent) throw new Error("an implicit root without an explicit parent: not what terrafarm writes");
    made.set(t, made.get(parent));
    return true;
  }
  const f = t.asFinalTile();
  const node = { boundingVolume: f.boundingVolume, geometricError: f.geometricError, refine: f.refine ?? "REPLACE" };
  if (f.transform) node.transform = f.transform;
  const cs = t.getFinalContents();
  if (cs.length > 1) throw new Error(`tile ${t.path} has ${cs.length} contents`);
  if (cs.length === 1) {
    node.content = { uri: cs[0].uri };
    contents++;
  }
  made.set(t, node);
  const parent = t.getParent();
  if (parent) {
    // (Under an implicit root's stand-in, this is the stand-in's parent.)
    const p = made.get(parent);
    if (!p) throw new Error(`tile ${t.path} visited before its parent`);
    (p.children ??= []).push(node);
  } else {
    root = node;
  }
  tiles++;
  deepest = Math.max(deepest, t.level);
  return true;
});
writeFileSync(output, JSON.stringify({ asset: tileset.asset, geometricError: tileset.geometricError, root }));
console.log(JSON.stringify({ tiles, contents, deepest }));
