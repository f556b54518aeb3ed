//! Which DNS records a site needs: its apex A and AAAA (to the platform's addresses) and
//! `www` as a CNAME to the apex, all managed and tagged with the site. Pure.

use hickory_proto::rr::RecordType;

use crate::domain::{DomainName, NewRecord, Site, parse_rdata};

fn www(site: &Site) -> Result<DomainName, String> {
    DomainName::parse(&format!("www.{}", site.domain)).map_err(|e| e.0)
}

/// The names a site's records can be at: its apex, `www` unless the domain is too long to
/// have one (then the site never got its records), and those of its ACME challenges.
pub fn names(site: &Site) -> Vec<DomainName> {
    std::iter::once(site.domain.clone())
        .chain(www(site).ok())
        .chain(crate::certificates::challenges::names(site))
        .collect()
}

/// The records `site` needs in a zone whose origin is `origin`.
pub fn needed(site: &Site, origin: &DomainName, ttl: u32) -> Result<Vec<NewRecord>, String> {
    let (apex, www) = (site.domain.clone(), www(site)?);
    let managed = |name: &DomainName, rtype: RecordType, content: &str| -> Result<NewRecord, String> {
        Ok(NewRecord {
            name: name.clone(),
            data: parse_rdata(rtype, content, origin)?,
            ttl,
            managed: true,
            site_id: Some(site.id),
        })
    };
    Ok(vec![
        managed(&apex, RecordType::A, &site.ipv4)?,
        managed(&apex, RecordType::AAAA, &site.ipv6)?,
        managed(&www, RecordType::CNAME, &format!("{}.", site.domain))?,
    ])
}
