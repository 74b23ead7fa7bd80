//! Encoders: mesh buffers → file bytes (GLB, OBJ). No I/O: the store writes what these return.

pub mod glb;
pub mod obj;
pub mod tileset;

/// Output formats a scene can be written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Glb,
    Obj,
}

impl Format {
    pub fn ext(self) -> &'static str {
        match self {
            Format::Glb => "glb",
            Format::Obj => "obj",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "glb" => Ok(Format::Glb),
            "obj" => Ok(Format::Obj),
            o => Err(format!("unknown format '{o}' (choose glb, obj or glb,obj)")),
        }
    }
}
