//! Plausibility limits on a file, checked before it can change anything: prefixes too wide or in
//! special-use ranges, too many prefixes, too many additions, a changeNumber jump. Each refusal
//! names the prefix or the figure and the option that sets the limit.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::config::Limits;
use crate::error::{Error, ErrorKind, Result};

/// The largest changeNumber accepted even for a first list: 2^53, above which JSON numbers stop
/// being exact in most tools (jq, JavaScript). Microsoft's are in the hundreds.
pub const MAX_CHANGE_NUMBER: u64 = 1 << 53;

/// IPv4 special-use blocks (RFC 6890 and the IANA IPv4 Special-Purpose Address Registry, plus
/// multicast and the reserved 240/4): none of them is an Internet service's address.
const SPECIAL_V4: &[(&str, [u8; 4], u8)] = &[
    ("\"this network\" (RFC 791)", [0, 0, 0, 0], 8),
    ("private-use (RFC 1918)", [10, 0, 0, 0], 8),
    ("shared address space / CGNAT (RFC 6598)", [100, 64, 0, 0], 10),
    ("loopback (RFC 1122)", [127, 0, 0, 0], 8),
    ("link-local (RFC 3927)", [169, 254, 0, 0], 16),
    ("private-use (RFC 1918)", [172, 16, 0, 0], 12),
    ("IETF protocol assignments (RFC 6890)", [192, 0, 0, 0], 24),
    ("documentation TEST-NET-1 (RFC 5737)", [192, 0, 2, 0], 24),
    ("AS112-v4 (RFC 7535)", [192, 31, 196, 0], 24),
    ("AMT (RFC 7450)", [192, 52, 193, 0], 24),
    ("deprecated 6to4 relay anycast (RFC 7526)", [192, 88, 99, 0], 24),
    ("private-use (RFC 1918)", [192, 168, 0, 0], 16),
    ("direct delegation AS112 (RFC 7534)", [192, 175, 48, 0], 24),
    ("benchmarking (RFC 2544)", [198, 18, 0, 0], 15),
    ("documentation TEST-NET-2 (RFC 5737)", [198, 51, 100, 0], 24),
    ("documentation TEST-NET-3 (RFC 5737)", [203, 0, 113, 0], 24),
    ("multicast (RFC 5771)", [224, 0, 0, 0], 4),
    ("reserved (RFC 1112)", [240, 0, 0, 0], 4),
];

/// IPv6 special-use blocks (RFC 6890 and the IANA IPv6 Special-Purpose Address Registry).
/// Everything outside the global unicast space 2000::/3 is refused as well.
const SPECIAL_V6: &[(&str, [u16; 8], u8)] = &[
    ("IPv4-IPv6 translation (RFC 6052)", [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96),
    ("local-use IPv4-IPv6 translation (RFC 8215)", [0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
    ("discard-only (RFC 6666)", [0x100, 0, 0, 0, 0, 0, 0, 0], 64),
    ("IETF protocol assignments, Teredo, ORCHID (RFC 2928, 4380, 7343)", [0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
    ("documentation (RFC 3849)", [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
    ("6to4 (RFC 3056)", [0x2002, 0, 0, 0, 0, 0, 0, 0], 16),
    ("documentation (RFC 9637)", [0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
    ("unique local (RFC 4193)", [0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
    ("link-local (RFC 4291)", [0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
    ("multicast (RFC 4291)", [0xff00, 0, 0, 0, 0, 0, 0, 0], 8),
];

fn v4(a: [u8; 4], len: u8) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::from(a), len).expect("valid table entry")
}

fn v6(a: [u16; 8], len: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = a;
    Ipv6Net::new(Ipv6Addr::new(a, b, c, d, e, f, g, h), len).expect("valid table entry")
}

/// The special-use block `net` overlaps (contains or lies in), if any.
pub fn special_use(net: &IpNet) -> Option<String> {
    match net {
        IpNet::V4(n) => SPECIAL_V4.iter().find_map(|(name, a, len)| {
            let s = v4(*a, *len);
            (s.contains(n) || n.contains(&s)).then(|| format!("{s} {name}"))
        }),
        IpNet::V6(n) => {
            let named = SPECIAL_V6.iter().find_map(|(name, a, len)| {
                let s = v6(*a, *len);
                (s.contains(n) || n.contains(&s)).then(|| format!("{s} {name}"))
            });
            let global = v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3);
            named.or_else(|| {
                (!global.contains(n)).then(|| format!("outside the global unicast space {global} (RFC 4291)"))
            })
        }
    }
}

/// Refuse a list before it is parsed into prefixes, from the raw count alone (a 900,000-prefix
/// file is refused without building a set of it).
pub fn check_raw_count(count: usize, limits: &Limits) -> Result<()> {
    if count > limits.max_prefixes {
        return Err(Error::new(
            ErrorKind::Implausible,
            format!(
                "the file lists {count} prefixes for the configured tags, more than the {} allowed \
                 (max_prefixes, --max-prefixes)",
                limits.max_prefixes
            ),
        ));
    }
    Ok(())
}

/// Every prefix within the width bounds and, unless allowed, outside the special-use ranges.
pub fn check_prefixes(published: &BTreeSet<IpNet>, limits: &Limits) -> Result<()> {
    check_raw_count(published.len(), limits)?;
    let mut wide = Vec::new();
    let mut special = Vec::new();
    for p in published {
        let bound = match p {
            IpNet::V4(_) => limits.widest_ipv4,
            IpNet::V6(_) => limits.widest_ipv6,
        };
        if p.prefix_len() < bound {
            wide.push(p.to_string());
        }
        if !limits.allow_special_use {
            if let Some(block) = special_use(p) {
                special.push(format!("{p} (in {block})"));
            }
        }
    }
    let list = |v: &[String]| {
        let shown: Vec<&str> = v.iter().take(5).map(String::as_str).collect();
        let more = if v.len() > 5 { format!(" and {} more", v.len() - 5) } else { String::new() };
        format!("{}{more}", shown.join(", "))
    };
    if !wide.is_empty() {
        return Err(Error::new(
            ErrorKind::Implausible,
            format!(
                "{} prefix(es) wider than the allowed IPv4 /{} or IPv6 /{}: {} (widest_ipv4/widest_ipv6, \
                 --widest-ipv4/--widest-ipv6)",
                wide.len(),
                limits.widest_ipv4,
                limits.widest_ipv6,
                list(&wide)
            ),
        ));
    }
    if !special.is_empty() {
        return Err(Error::new(
            ErrorKind::Implausible,
            format!(
                "{} prefix(es) in special-use ranges, which no Internet service uses: {} \
                 (only a lab feed sets allow_special_use, --allow-special-use)",
                special.len(),
                list(&special)
            ),
        ));
    }
    Ok(())
}

/// The changeNumber is not absurd, and (with a baseline) moves at most `max_change_number_jump`
/// past the highest one accepted.
pub fn check_change_number(new: u64, highest: Option<u64>, limits: &Limits) -> Result<()> {
    if new >= MAX_CHANGE_NUMBER {
        return Err(Error::new(
            ErrorKind::Implausible,
            format!("the file's changeNumber {new} is not plausible (Microsoft's are in the hundreds; limit 2^53)"),
        ));
    }
    if let Some(h) = highest {
        if new > h.saturating_add(limits.max_change_number_jump) {
            return Err(Error::new(
                ErrorKind::Implausible,
                format!(
                    "the file's changeNumber {new} jumps {} past the highest accepted {h}, more than the {} allowed \
                     (max_change_number_jump, --max-change-number-jump)",
                    new - h,
                    limits.max_change_number_jump
                ),
            ));
        }
    }
    Ok(())
}

/// At most `max_additions` new prefixes at once (a first list is bounded by `max_prefixes`).
pub fn check_additions(added: &[IpNet], limits: &Limits) -> Result<()> {
    if added.len() > limits.max_additions {
        return Err(Error::new(
            ErrorKind::Implausible,
            format!(
                "the file adds {} prefixes at once, more than the {} allowed (max_additions, --max-additions); \
                 the first: {}",
                added.len(),
                limits.max_additions,
                added.iter().take(3).map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[&str]) -> BTreeSet<IpNet> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn special_use_ranges_are_found_both_ways() {
        for (p, want) in [
            ("10.1.0.0/16", "10.0.0.0/8"),
            ("100.64.0.0/10", "100.64.0.0/10"),
            ("127.0.0.1/32", "127.0.0.0/8"),
            ("169.254.169.254/32", "169.254.0.0/16"),
            ("192.0.0.0/16", "192.0.0.0/24"),
            ("198.51.100.0/25", "198.51.100.0/24"),
            ("224.0.0.251/32", "224.0.0.0/4"),
            ("255.255.255.255/32", "240.0.0.0/4"),
            ("2001:db8:1::/48", "2001:db8::/32"),
            ("fd00:231::/64", "fc00::/7"),
            ("fe80::/64", "fe80::/10"),
            ("4000::/16", "2000::/3"),
            ("::/0", "RFC"),
            ("::ffff:0.0.0.0/96", "2000::/3"),
            ("2002:c000:204::/48", "2002::/16"),
        ] {
            let hit = special_use(&p.parse().unwrap()).unwrap_or_else(|| panic!("{p} not special"));
            assert!(hit.contains(want), "{p}: {hit}");
        }
        for p in ["20.190.128.0/18", "40.126.0.0/18", "2603:1006:2000::/48", "2a01:111:f100:2000::/52", "52.0.0.0/16"] {
            assert_eq!(special_use(&p.parse().unwrap()), None, "{p}");
        }
    }

    #[test]
    fn limits_name_the_prefix_and_the_option() {
        let l = Limits::default();
        assert!(check_prefixes(&set(&["20.190.128.0/18", "2603:1006:2000::/48"]), &l).is_ok());
        let e = check_prefixes(&set(&["20.190.128.0/18", "0.0.0.0/0", "::/0"]), &l).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Implausible);
        assert!(e.message().contains("0.0.0.0/0") && e.message().contains("::/0"), "{e}");
        assert!(e.message().contains("--widest-ipv4"), "{e}");
        let e = check_prefixes(&set(&["10.231.0.200/30"]), &l).unwrap_err();
        assert!(e.message().contains("10.231.0.200/30 (in 10.0.0.0/8 private-use"), "{e}");
        let lab = Limits { allow_special_use: true, ..Limits::default() };
        assert!(check_prefixes(&set(&["10.231.0.200/30", "fd00:231::c8/126"]), &lab).is_ok());
        // Width applies to lab feeds too.
        assert!(check_prefixes(&set(&["10.0.0.0/8"]), &lab).is_err());
        let e = check_raw_count(900_000, &l).unwrap_err();
        assert!(e.message().contains("900000 prefixes") && e.message().contains("5000"), "{e}");
    }

    #[test]
    fn change_number_bounds() {
        let l = Limits::default();
        assert!(check_change_number(363, Some(362), &l).is_ok());
        assert!(check_change_number(97, Some(105), &l).is_ok(), "backwards is not implausible");
        assert!(check_change_number(1362, Some(362), &l).is_ok());
        let e = check_change_number(1363, Some(362), &l).unwrap_err();
        assert!(e.message().contains("jumps 1001 past the highest accepted 362"), "{e}");
        let e = check_change_number(u64::MAX, Some(362), &l).unwrap_err();
        assert!(e.message().contains(&u64::MAX.to_string()), "{e}");
        assert!(check_change_number(u64::MAX, None, &l).is_err());
        assert!(check_change_number(5, None, &l).is_ok());
    }
}
