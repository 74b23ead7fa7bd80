//! terrafarm: height maps → seamless 3D tile meshes.
//!
//! Data flows one way, and the modules are laid out to show it:
//! `raster` (read) → `tiling` (tile) → `halo` over `comm` (halo) → `mesh` (mesh) → `encode` (encode) → `store` (store),
//! composed as stage functions by `pipeline` (shared by `mesh`, `bench` and the tests); `app` only dispatches
//! commands. `render` comes after the store: it reads scenes back and draws them with `shaders/` on wgpu. Kernels in `mesh` and `encode` do no I/O; `comm` owns the failure policy.

pub mod app;
pub mod batch;
pub mod bench;

pub mod cli;
pub mod comm;
pub mod config;
pub mod encode;
pub mod halo;
pub mod info;
pub mod manifest;
pub mod mesh;
pub mod pipeline;
pub mod raster;
pub mod redact;
pub mod render;
pub mod store;
pub mod synth;
pub mod tiling;
