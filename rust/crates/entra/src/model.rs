//! The "Azure IP Ranges and Service Tags" document: parsing and prefix extraction.
//!
//! The parser is tolerant where Microsoft's files vary (unknown fields, `networkFeatures: null`,
//! CRLF or LF, a UTF-8 byte-order mark) and strict where it matters (every prefix must be a CIDR
//! network with no host bits set).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// The Azure cloud a file belongs to.
///
/// The canonical names are the values Microsoft writes in the file's `cloud` field and in the
/// file name `ServiceTags_<Cloud>_<YYYYMMDD>.json`: `Public`, `AzureGovernment` and `China`
/// (the China file says `China`, not `AzureChina`; both spellings are accepted on input).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Cloud {
    Public,
    AzureGovernment,
    China,
}

impl Cloud {
    pub const ALL: [Cloud; 3] = [Cloud::Public, Cloud::AzureGovernment, Cloud::China];

    /// The name in the file's `cloud` field and in its file name.
    pub fn name(self) -> &'static str {
        match self {
            Cloud::Public => "Public",
            Cloud::AzureGovernment => "AzureGovernment",
            Cloud::China => "China",
        }
    }

    /// Microsoft's download-center id of the details page for this cloud's file.
    pub fn download_id(self) -> u32 {
        match self {
            Cloud::Public => 56519,
            Cloud::AzureGovernment => 57063,
            Cloud::China => 57062,
        }
    }

    /// The download details page that links to the current file.
    pub fn details_url(self) -> String {
        format!("https://www.microsoft.com/en-us/download/details.aspx?id={}", self.download_id())
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Cloud {
    type Err = Error;

    /// Accepts the canonical names and common spellings, case-insensitively:
    /// `public`/`AzureCloud`, `AzureGovernment`/`government`/`gov`/`usgov`,
    /// `China`/`AzureChina`/`AzureChinaCloud`.
    fn from_str(s: &str) -> Result<Self> {
        let k: String = s.chars().filter(|c| !matches!(c, '-' | '_' | ' ')).collect::<String>().to_ascii_lowercase();
        match k.as_str() {
            "public" | "azurecloud" | "azurepublic" => Ok(Cloud::Public),
            "azuregovernment" | "government" | "gov" | "usgov" | "azureusgovernment" => Ok(Cloud::AzureGovernment),
            "china" | "azurechina" | "azurechinacloud" => Ok(Cloud::China),
            _ => Err(Error::new(
                ErrorKind::Config,
                format!("unknown cloud {s:?} (expected Public, AzureGovernment or China)"),
            )),
        }
    }
}

/// A whole service-tags file. Unknown fields are ignored.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceTags {
    /// The file's own change number. Not strictly increasing in practice.
    pub change_number: u64,
    /// `Public`, `AzureGovernment` or `China`, as written in the file.
    pub cloud: String,
    #[serde(default)]
    pub values: Vec<ServiceTag>,
}

/// One service tag (`AzureActiveDirectory`, `Storage.WestEurope`, ...).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceTag {
    pub name: String,
    #[serde(default)]
    pub id: String,
    pub properties: TagProperties,
}

/// A tag's properties. `networkFeatures` is `null` for about half of the tags.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TagProperties {
    pub change_number: u64,
    pub region: String,
    pub region_id: u64,
    pub platform: String,
    pub system_service: String,
    pub address_prefixes: Vec<String>,
    pub network_features: Option<Vec<String>>,
}

impl ServiceTags {
    /// The tag with this name (or, failing that, this id).
    pub fn tag(&self, name: &str) -> Option<&ServiceTag> {
        self.values.iter().find(|t| t.name == name).or_else(|| self.values.iter().find(|t| t.id == name))
    }

    /// The `cloud` field as a [`Cloud`], if it names one.
    pub fn cloud(&self) -> Option<Cloud> {
        self.cloud.parse().ok()
    }
}

/// Parse a service-tags file from its bytes.
///
/// An HTML page (what a proxy, a captive portal or a wrong link returns) is reported as
/// [`ErrorKind::WrongContent`]; anything else that does not parse as [`ErrorKind::Parse`].
pub fn parse(bytes: &[u8]) -> Result<ServiceTags> {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = body.iter().position(|b| !b.is_ascii_whitespace());
    let Some(start) = start else {
        return Err(Error::new(ErrorKind::WrongContent, "the document is empty"));
    };
    if body[start] == b'<' {
        let head = String::from_utf8_lossy(&body[start..body.len().min(start + 60)]).replace(['\r', '\n'], " ");
        return Err(Error::new(
            ErrorKind::WrongContent,
            format!("expected the service-tags JSON, got markup (HTML/XML) starting with {head:?}"),
        ));
    }
    if body[start] != b'{' {
        return Err(Error::new(
            ErrorKind::WrongContent,
            format!("expected the service-tags JSON object, got a document starting with byte {:#04x}", body[start]),
        ));
    }
    serde_json::from_slice::<ServiceTags>(body).map_err(|e| {
        let what =
            if e.is_eof() { "the document ends early (truncated download?)" } else { "invalid service-tags JSON" };
        Error::new(ErrorKind::Parse, format!("{what}: {e} ({} bytes)", bytes.len()))
    })
}

/// Per-tag facts recorded in the state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagInfo {
    pub name: String,
    /// The tag's own `properties.changeNumber`.
    pub change_number: u64,
    pub ipv4: usize,
    pub ipv6: usize,
}

/// The union of the prefixes of `tags`, validated. Fails if a tag is missing or a prefix is not
/// a CIDR network (host bits set count as invalid). An empty result is not an error here;
/// [`crate::validate_and_merge`] refuses it.
pub fn extract(doc: &ServiceTags, tags: &[String]) -> Result<BTreeSet<IpNet>> {
    extract_detailed(doc, tags).map(|(set, _)| set)
}

/// [`extract`] plus the per-tag facts.
pub fn extract_detailed(doc: &ServiceTags, tags: &[String]) -> Result<(BTreeSet<IpNet>, Vec<TagInfo>)> {
    if tags.is_empty() {
        return Err(Error::new(ErrorKind::Config, "no service tag configured"));
    }
    let mut set = BTreeSet::new();
    let mut infos = Vec::with_capacity(tags.len());
    let mut missing = Vec::new();
    let mut invalid: Vec<String> = Vec::new();
    let mut invalid_count = 0usize;
    for name in tags {
        let Some(tag) = doc.tag(name) else {
            missing.push(name.as_str());
            continue;
        };
        let (mut v4, mut v6) = (0, 0);
        for raw in &tag.properties.address_prefixes {
            match parse_prefix(raw) {
                Ok(net) => {
                    match net {
                        IpNet::V4(_) => v4 += 1,
                        IpNet::V6(_) => v6 += 1,
                    }
                    set.insert(net);
                }
                Err(why) => {
                    invalid_count += 1;
                    if invalid.len() < 5 {
                        invalid.push(format!("{}: {raw:?} ({why})", tag.name));
                    }
                }
            }
        }
        infos.push(TagInfo { name: tag.name.clone(), change_number: tag.properties.change_number, ipv4: v4, ipv6: v6 });
    }
    if !missing.is_empty() {
        return Err(Error::new(
            ErrorKind::MissingTag,
            format!(
                "service tag {} not found in the {} file ({} tags, changeNumber {})",
                missing.join(", "),
                doc.cloud,
                doc.values.len(),
                doc.change_number
            ),
        ));
    }
    if invalid_count > 0 {
        return Err(Error::new(
            ErrorKind::InvalidPrefix,
            format!("{invalid_count} invalid prefix(es), e.g. {}", invalid.join("; ")),
        ));
    }
    Ok((set, infos))
}

/// A CIDR network: address/length, no host bits set.
pub fn parse_prefix(raw: &str) -> std::result::Result<IpNet, &'static str> {
    let net: IpNet = raw.trim().parse().map_err(|_| "not a CIDR prefix")?;
    if net.trunc() != net {
        return Err("host bits set");
    }
    Ok(net)
}

/// Hex SHA-256 of the sorted prefix list, one prefix per line (each line ends with `\n`).
pub fn content_hash<'a>(prefixes: impl IntoIterator<Item = &'a IpNet>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut sorted: Vec<&IpNet> = prefixes.into_iter().collect();
    sorted.sort();
    for p in sorted {
        h.update(p.to_string().as_bytes());
        h.update(b"\n");
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\u{feff}{\r\n \"changeNumber\": 7, \"cloud\": \"Public\", \"extra\": [1],\r\n \"values\": [\
        {\"name\": \"A\", \"id\": \"A\", \"properties\": {\"changeNumber\": 3, \"addressPrefixes\": \
        [\"10.0.0.0/8\", \"2001:db8::/32\"], \"networkFeatures\": null, \"new\": {}}},\
        {\"name\": \"B\", \"id\": \"B.id\", \"properties\": {\"changeNumber\": 1, \"addressPrefixes\": \
        [\"10.0.0.0/8\", \"192.0.2.0/24\"], \"networkFeatures\": [\"NSG\"]}}]}";

    #[test]
    fn parses_tolerantly_and_unions_tags() {
        let d = parse(DOC.as_bytes()).unwrap();
        assert_eq!(d.change_number, 7);
        assert_eq!(d.cloud(), Some(Cloud::Public));
        let (set, info) = extract_detailed(&d, &["A".into(), "B.id".into()]).unwrap();
        assert_eq!(set.len(), 3);
        assert_eq!(info[0], TagInfo { name: "A".into(), change_number: 3, ipv4: 1, ipv6: 1 });
        assert_eq!(info[1].name, "B");
    }

    #[test]
    fn refuses_bad_content() {
        assert_eq!(parse(b"  <!DOCTYPE html><html>").unwrap_err().kind(), ErrorKind::WrongContent);
        assert_eq!(parse(b"").unwrap_err().kind(), ErrorKind::WrongContent);
        assert_eq!(parse(b"[1]").unwrap_err().kind(), ErrorKind::WrongContent);
        let e = parse(&DOC.as_bytes()[..100]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Parse);
        assert!(e.message().contains("ends early"), "{e}");
    }

    #[test]
    fn strict_prefixes() {
        assert!(parse_prefix("10.0.0.0/8").is_ok());
        assert!(parse_prefix(" 2603:1020::/47 ").is_ok());
        assert_eq!(parse_prefix("10.0.0.1/8"), Err("host bits set"));
        assert!(parse_prefix("10.0.0.1").is_err());
        assert!(parse_prefix("10.0.0.0/33").is_err());
        assert!(parse_prefix("example.com/24").is_err());
    }

    #[test]
    fn missing_tag_and_invalid_prefix() {
        let d = parse(DOC.as_bytes()).unwrap();
        assert_eq!(extract(&d, &["Nope".into()]).unwrap_err().kind(), ErrorKind::MissingTag);
        assert_eq!(extract(&d, &[]).unwrap_err().kind(), ErrorKind::Config);
        let bad = DOC.replace("192.0.2.0/24", "192.0.2.0/240");
        let e = extract(&parse(bad.as_bytes()).unwrap(), &["B".into()]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidPrefix);
        assert!(e.message().contains("192.0.2.0/240"), "{e}");
    }

    #[test]
    fn cloud_names() {
        for c in Cloud::ALL {
            assert_eq!(c.name().parse::<Cloud>().unwrap(), c);
        }
        assert_eq!("azure-china".parse::<Cloud>().unwrap(), Cloud::China);
        assert_eq!("gov".parse::<Cloud>().unwrap(), Cloud::AzureGovernment);
        assert!("mars".parse::<Cloud>().is_err());
        assert!(Cloud::Public.details_url().ends_with("id=56519"));
    }

    #[test]
    fn hash_is_order_independent() {
        let a: IpNet = "10.0.0.0/8".parse().unwrap();
        let b: IpNet = "::/0".parse().unwrap();
        assert_eq!(content_hash([&a, &b]), content_hash([&b, &a]));
        assert_ne!(content_hash([&a]), content_hash([&b]));
        assert_eq!(content_hash([&a, &b]).len(), 64);
    }
}
