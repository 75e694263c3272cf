//! PURE: the built-in profiles. Each IS a mapping file, compiled into the binary
//! (`profiles/*.toml`; `pgconverge profile show NAME` prints it), plus the variable that
//! names its source database.

/// A mapping file shipped with pgconverge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Builtin {
    pub name: &'static str,
    /// The variable naming the source database, and its default.
    pub variable: &'static str,
    pub default_db: &'static str,
    pub toml: &'static str,
}

pub const BUILTINS: [Builtin; 2] = [
    Builtin {
        name: "alkemio",
        variable: "ALKEMIO_DB",
        default_db: "alkemio",
        toml: include_str!("../../profiles/alkemio.toml"),
    },
    Builtin {
        name: "kratos",
        variable: "KRATOS_DB",
        default_db: "kratos",
        toml: include_str!("../../profiles/kratos.toml"),
    },
];

/// The built-in profile of that name, if there is one.
pub fn find(name: &str) -> Option<Builtin> {
    BUILTINS.into_iter().find(|b| b.name == name)
}

/// The names, for messages.
pub fn names() -> Vec<&'static str> {
    BUILTINS.iter().map(|b| b.name).collect()
}
