// A real 3D Tiles client: CesiumJS (npm `cesium`) in headless Debian Chromium (software WebGL2, SwiftShader),
// driven by puppeteer-core. Serves the page, Cesium's build and the tileset from 127.0.0.1 (every other request is
// refused and counted), loads the tileset, moves the camera to it, waits until every tile the view needs has
// loaded, and writes a screenshot. Prints a JSON report; exits 1 on any tile failure, no tile loaded, a blank
// frame or an attempt to reach another host.
// Usage: node .ci/tools/cesium-check.mjs TILESET_DIR SCREENSHOT.png
import http from "node:http";
import { readFile } from "node:fs/promises";
import { dirname, extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import puppeteer from "puppeteer-core";

const here = dirname(fileURLToPath(import.meta.url));
const cesium = join(here, "node_modules/cesium/Build/Cesium");
const [tiles, shot] = process.argv.slice(2);
const types = { ".js": "text/javascript", ".json": "application/json", ".glb": "model/gltf-binary", ".css": "text/css", ".wasm": "application/wasm", ".png": "image/png", ".jpg": "image/jpeg", ".svg": "image/svg+xml", ".html": "text/html", ".xml": "text/xml" };

const page = `<!doctype html><html><head><meta charset="utf-8">
<script>window.CESIUM_BASE_URL = "/cesium/";</script>
<script src="/cesium/Cesium.js"></script>
<link href="/cesium/Widgets/widgets.css" rel="stylesheet">
<style>html, body, #c { margin: 0; width: 100%; height: 100%; overflow: hidden; }</style>
</head><body><div id="c"></div><script>
(async () => {
  const r = { failures: [], loaded: 0 };
  try {
    const viewer = new Cesium.Viewer("c", {
      baseLayer: false, terrainProvider: new Cesium.EllipsoidTerrainProvider(), animation: false, timeline: false,
      baseLayerPicker: false, geocoder: false, homeButton: false, sceneModePicker: false, navigationHelpButton: false,
      infoBox: false, selectionIndicator: false, fullscreenButton: false,
      contextOptions: { webgl: { preserveDrawingBuffer: true } },
    });
    const scene = viewer.scene;
    scene.skyBox.show = false; scene.sun.show = false; scene.moon.show = false; scene.skyAtmosphere.show = false;
    scene.fog.enabled = false; scene.globe.showGroundAtmosphere = false;
    scene.backgroundColor = Cesium.Color.BLACK; scene.globe.baseColor = Cesium.Color.BLACK;
    const tileset = await Cesium.Cesium3DTileset.fromUrl("/tiles/tileset.json", { maximumScreenSpaceError: Number(new URLSearchParams(location.search).get("sse") ?? 1) });
    tileset.tileFailed.addEventListener((e) => r.failures.push(e.url + ": " + e.message));
    tileset.tileLoad.addEventListener(() => r.loaded++);
    scene.primitives.add(tileset);
    await viewer.zoomTo(tileset, new Cesium.HeadingPitchRange(0.3, -0.6, 0));
    // After the camera moved: wait until the tileset reports everything this view needs as loaded, for a while.
    let stable = 0;
    for (let i = 0; i < 1200 && stable < 10; i++) {
      await new Promise((res) => setTimeout(res, 100));
      stable = tileset.tilesLoaded && r.loaded > 0 ? stable + 1 : 0;
    }
    r.allTilesLoaded = stable >= 10;
    viewer.render();
    const c = document.createElement("canvas");
    c.width = scene.canvas.width; c.height = scene.canvas.height;
    const g = c.getContext("2d");
    g.drawImage(scene.canvas, 0, 0);
    const px = g.getImageData(0, 0, c.width, c.height).data;
    const colours = new Set();
    let lit = 0;
    for (let i = 0; i < px.length; i += 4) {
      if (px[i] + px[i + 1] + px[i + 2] > 24) lit++;
      colours.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
    }
    r.litFraction = lit / (px.length / 4);
    r.colours = colours.size;
    r.webgl = scene.context.webgl2 ? "webgl2" : "webgl1";
  } catch (e) {
    r.error = String(e && e.stack || e);
  }
  window.result = r;
})();
</script></body></html>`;

const server = http.createServer(async (req, res) => {
  const url = decodeURIComponent(new URL(req.url, "http://127.0.0.1").pathname);
  let file = null;
  if (url === "/") {
    res.writeHead(200, { "content-type": "text/html" });
    return res.end(page);
  } else if (url.startsWith("/cesium/")) file = join(cesium, normalize(url.slice(8)));
  else if (url.startsWith("/tiles/")) file = join(tiles, normalize(url.slice(7)));
  try {
    const body = await readFile(file);
    res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" });
    res.end(body);
  } catch {
    res.writeHead(404);
    res.end();
  }
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const origin = `http://127.0.0.1:${server.address().port}`;

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist", "--window-size=960,640"],
  defaultViewport: { width: 960, height: 640 },
});
let external = 0;
const console_ = [];
let result;
try {
  const p = await browser.newPage();
  await p.setRequestInterception(true);
  p.on("request", (rq) => {
    const u = rq.url();
    if (u.startsWith(origin) || u.startsWith("data:") || u.startsWith("blob:")) rq.continue();
    else {
      external++;
      rq.abort();
    }
  });
  p.on("console", (m) => console_.push(m.text()));
  p.on("pageerror", (e) => console_.push(String(e)));
  await p.goto(origin + "/", { waitUntil: "load" });
  await p.waitForFunction("window.result !== undefined", { timeout: 170000, polling: 500 });
  result = await p.evaluate("window.result");
  await p.screenshot({ path: shot });
} finally {
  await browser.close();
  server.close();
}
result.external = external;
console.log(JSON.stringify(result));
if (result.error) console.error(result.error, console_.slice(-10).join("\n"));
const ok = !result.error && result.failures.length === 0 && result.loaded > 0 && result.allTilesLoaded && result.litFraction > 0.05 && result.colours > 50 && external === 0;
process.exit(ok ? 0 : 1);
