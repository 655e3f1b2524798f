//! Microsoft's files and download page come from the network: parsing them gives a result or a
//! clear error, never a panic.

use proptest::prelude::*;
use vorfw_entra::{find_download_link, parse, parse_prefix, Cloud};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn service_tag_files_parse_or_fail_cleanly(text in "(\\{|\\}|\\[|\\]|\"changeNumber\"|\"cloud\"|\"Public\"|\"values\"|\"name\"|\"AzureActiveDirectory\"|\"properties\"|\"addressPrefixes\"|\"20\\.190\\.128\\.0/18\"|\"::/0\"|:|,|[0-9]{1,12}|-|[ -~]){0,60}") {
        let _ = parse(text.as_bytes());
    }

    #[test]
    fn prefixes_parse_or_fail_cleanly(s in ".{0,50}") {
        let _ = parse_prefix(&s);
    }

    #[test]
    fn download_pages_never_panic(page in "(<a href=\"|https://download\\.microsoft\\.com/download/|ServiceTags_Public_|[0-9]{8}|\\.json|\"|>|\\\\u002f|[ -~]|é){0,80}") {
        for cloud in [Cloud::Public, Cloud::China, Cloud::AzureGovernment] {
            let _ = find_download_link(&page, "https://download.microsoft.com/download/", cloud);
        }
    }
}
