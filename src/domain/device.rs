//! A readable device name from a `User-Agent` header: "Firefox on Linux", "Safari on
//! iPhone". Shown on "Your sessions" so a person recognises their own browsers.
//!
//! Hand-written on purpose: the full parsers (uap-core's regex list, woothee's tables) bring
//! thousands of patterns for crawlers and exotic devices that a sign-in server never needs
//! to name; the browsers and systems people sign in with are a short, stable list. Order
//! matters: Chromium-based browsers also say "Chrome" and "Safari", Chrome on iOS says
//! "Safari", so the more specific tokens are tested first. Anything unrecognised is named
//! by what is known ("Unknown browser on Windows") — the raw header is shown beside it.

/// Browser and operating system named in a user agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub browser: Option<&'static str>,
    pub os: Option<&'static str>,
}

impl Device {
    /// Reads a `User-Agent` value (absent or empty: nothing known).
    pub fn parse(user_agent: Option<&str>) -> Device {
        let ua = user_agent.unwrap_or("");
        Device {
            browser: browser(ua),
            os: os(ua),
        }
    }

    /// "Firefox on Linux", "Chrome", "curl", "Unknown device".
    pub fn label(&self) -> String {
        match (self.browser, self.os) {
            (Some(b), Some(o)) => format!("{b} on {o}"),
            (Some(b), None) => b.to_owned(),
            (None, Some(o)) => format!("Unknown browser on {o}"),
            (None, None) => "Unknown device".to_owned(),
        }
    }
}

fn has(ua: &str, token: &str) -> bool {
    ua.contains(token)
}

fn browser(ua: &str) -> Option<&'static str> {
    // Most specific first (see the module docs).
    const TOKENS: &[(&str, &str)] = &[
        ("Edg/", "Edge"),
        ("EdgA/", "Edge"),
        ("EdgiOS/", "Edge"),
        ("OPR/", "Opera"),
        ("OPiOS/", "Opera"),
        ("Vivaldi/", "Vivaldi"),
        ("YaBrowser/", "Yandex Browser"),
        ("SamsungBrowser/", "Samsung Internet"),
        ("Brave", "Brave"),
        ("FxiOS/", "Firefox"),
        ("Firefox/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("HeadlessChrome/", "Headless Chrome"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("MSIE ", "Internet Explorer"),
        ("Trident/", "Internet Explorer"),
        ("curl/", "curl"),
        ("Wget/", "Wget"),
        ("python-requests/", "Python requests"),
        ("reqwest", "reqwest"),
        ("okhttp/", "OkHttp"),
        ("Go-http-client/", "Go HTTP client"),
    ];
    TOKENS
        .iter()
        .find(|(token, _)| has(ua, token))
        .map(|(_, name)| *name)
}

fn os(ua: &str) -> Option<&'static str> {
    const TOKENS: &[(&str, &str)] = &[
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("iPod", "iPod"),
        ("Android", "Android"),
        ("CrOS", "ChromeOS"),
        ("Windows Phone", "Windows Phone"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Macintosh", "macOS"),
        ("Ubuntu", "Ubuntu"),
        ("Fedora", "Fedora"),
        ("Linux", "Linux"),
        ("FreeBSD", "FreeBSD"),
        ("OpenBSD", "OpenBSD"),
    ];
    TOKENS
        .iter()
        .find(|(token, _)| has(ua, token))
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(ua: &str) -> String {
        Device::parse(Some(ua)).label()
    }

    #[test]
    fn common_desktop_browsers() {
        assert_eq!(
            label("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"),
            "Firefox on Ubuntu"
        );
        assert_eq!(
            label(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
            ),
            "Chrome on Windows"
        );
        assert_eq!(
            label(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.70"
            ),
            "Edge on Windows"
        );
        assert_eq!(
            label(
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15"
            ),
            "Safari on macOS"
        );
        assert_eq!(
            label(
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0"
            ),
            "Opera on Linux"
        );
        assert_eq!(
            label(
                "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
            ),
            "Chrome on ChromeOS"
        );
    }

    #[test]
    fn phones_and_tablets() {
        assert_eq!(
            label(
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
            ),
            "Safari on iPhone"
        );
        // Chrome and Firefox on iOS say "Safari" and "Mac OS X" too.
        assert_eq!(
            label(
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1"
            ),
            "Chrome on iPhone"
        );
        assert_eq!(
            label(
                "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15"
            ),
            "Firefox on iPad"
        );
        assert_eq!(
            label(
                "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36"
            ),
            "Samsung Internet on Android"
        );
        assert_eq!(
            label(
                "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"
            ),
            "Chrome on Android"
        );
    }

    #[test]
    fn scripts_and_unknowns() {
        assert_eq!(label("curl/8.5.0"), "curl");
        assert_eq!(
            label("Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0) like Gecko"),
            "Internet Explorer on Windows"
        );
        assert_eq!(label("SomeBot/1.0 (Linux)"), "Unknown browser on Linux");
        assert_eq!(label(""), "Unknown device");
        assert_eq!(Device::parse(None).label(), "Unknown device");
    }
}
