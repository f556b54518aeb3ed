//! API permissions: a resource and an access level.

use std::fmt;
use std::str::FromStr;

/// An API permission: a resource and an access level; `write` implies `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scope {
    pub resource: Resource,
    pub write: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    Sites,
    Dns,
    Wordpress,
    Projects,
    Tokens,
}

impl Resource {
    pub const ALL: [Self; 5] = [Self::Sites, Self::Dns, Self::Wordpress, Self::Projects, Self::Tokens];

    fn as_str(self) -> &'static str {
        match self {
            Self::Sites => "sites",
            Self::Dns => "dns",
            Self::Wordpress => "wordpress",
            Self::Projects => "projects",
            Self::Tokens => "tokens",
        }
    }
}

impl Scope {
    pub const fn read(resource: Resource) -> Self {
        Self { resource, write: false }
    }
    pub const fn write(resource: Resource) -> Self {
        Self { resource, write: true }
    }

    /// Every scope at write level: what a token created without scopes gets.
    pub fn all() -> Vec<Self> {
        Resource::ALL.iter().map(|r| Self::write(*r)).collect()
    }

    /// Whether holding `self` grants `needed`.
    pub fn grants(self, needed: Self) -> bool {
        self.resource == needed.resource && (self.write || !needed.write)
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (res, level) = s
            .split_once(':')
            .ok_or_else(|| format!("scope {s:?} is not resource:level"))?;
        let resource = Resource::ALL
            .into_iter()
            .find(|r| r.as_str() == res)
            .ok_or_else(|| format!("unknown resource {res:?} in scope {s:?}"))?;
        let write = match level {
            "read" => false,
            "write" => true,
            _ => return Err(format!("unknown level {level:?} in scope {s:?}; use read or write")),
        };
        Ok(Self { resource, write })
    }
}

/// Stored and shown as `resource:level`.
impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <&str>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}",
            self.resource.as_str(),
            if self.write { "write" } else { "read" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_write_implies_read() {
        let w: Scope = "dns:write".parse().unwrap();
        assert!(w.grants(Scope::read(Resource::Dns)));
        assert!(!Scope::read(Resource::Dns).grants(w));
        assert!(!w.grants(Scope::read(Resource::Sites)));
        assert!("dns:admin".parse::<Scope>().is_err());
        assert_eq!(w.to_string(), "dns:write");
    }
}
