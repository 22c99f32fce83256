//! A reminder as each platform's incoming-webhook bot expects it, signed as it expects, and sent
//! with bounded retries. A 200 whose body reports an error (WeCom's and DingTalk's `errcode`,
//! Feishu's `code`) is a failure: those bots answer 200 to a bad signature or a rate limit.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::Reminder;
use super::channel::{Channel, Kind};

/// One HTTP request to a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Where to POST (DingTalk's carries its signature).
    pub url: String,
    /// The JSON body.
    pub body: Vec<u8>,
    /// Headers beyond `Content-Type: application/json` (the webhook's signature).
    pub headers: Vec<(&'static str, String)>,
}

/// HMAC-SHA256 of `msg` under `key`.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// DingTalk's signature: `base64(HmacSHA256(key = secret, msg = timestamp_ms + "\n" + secret))`,
/// added to the URL (URL-encoded) with the timestamp.
pub fn dingtalk_url(url: &str, secret: &str, timestamp_ms: i64) -> Result<String, String> {
    let sign = b64(&hmac_sha256(
        secret.as_bytes(),
        format!("{timestamp_ms}\n{secret}").as_bytes(),
    ));
    let mut url = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    url.query_pairs_mut()
        .append_pair("timestamp", &timestamp_ms.to_string())
        .append_pair("sign", &sign);
    Ok(url.to_string())
}

/// Feishu's signature: `base64(HmacSHA256(key = timestamp_s + "\n" + secret, msg = ""))`.
pub fn feishu_sign(secret: &str, timestamp_s: i64) -> String {
    b64(&hmac_sha256(format!("{timestamp_s}\n{secret}").as_bytes(), b""))
}

/// The generic webhook's `X-Sitesync-Signature`: `sha256=` and hex HMAC-SHA256 of the body.
pub fn webhook_signature(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(hmac_sha256(secret.as_bytes(), body)))
}

/// The request delivering `r` to `channel`, signed at `now_ms` (each attempt signs anew: DingTalk
/// and Feishu refuse a timestamp more than an hour old).
pub fn request(channel: &Channel, r: &Reminder, now_ms: i64) -> Result<Outgoing, String> {
    let at = channel.mentions_for(r.rule);
    let mut url = channel.url.clone();
    let mut headers = Vec::new();
    let body: Value = match channel.kind {
        Kind::Wecom => json!({
            "msgtype": "text",
            "text": { "content": r.text_zh, "mentioned_mobile_list": at },
        }),
        Kind::Dingtalk => {
            if let Some(secret) = &channel.secret {
                url = dingtalk_url(&url, secret, now_ms)?;
            }
            // DingTalk highlights a mention only when the text names it too.
            let named: String = at.iter().map(|m| format!(" @{m}")).collect();
            json!({
                "msgtype": "text",
                "text": { "content": format!("{}{named}", r.text_zh) },
                "at": { "atMobiles": at, "isAtAll": false },
            })
        }
        Kind::Feishu => {
            let named: String = at.iter().map(|m| format!(" <at user_id=\"{m}\"></at>")).collect();
            let mut body = json!({
                "msg_type": "text",
                "content": { "text": format!("{}{named}", r.text_zh) },
            });
            if let Some(secret) = &channel.secret {
                let ts = now_ms.div_euclid(1000);
                body["timestamp"] = json!(ts.to_string());
                body["sign"] = json!(feishu_sign(secret, ts));
            }
            body
        }
        Kind::Webhook => json!({
            "rule": r.rule,
            "key": r.key,
            "org": r.org,
            "site": r.site,
            "site_name": r.site_name,
            "subjects": r.subjects,
            "text": { "zh": r.text_zh, "en": r.text_en },
            "at": at,
        }),
    };
    let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
    if channel.kind == Kind::Webhook
        && let Some(secret) = &channel.secret
    {
        headers.push(("X-Sitesync-Signature", webhook_signature(secret, &body)));
    }
    Ok(Outgoing { url, body, headers })
}

/// Whether the platform accepted a message, from its answer: `Err` says why not.
pub fn accepted(kind: Kind, status: u16, body: &[u8]) -> Result<(), String> {
    if !(200..300).contains(&status) {
        return Err(format!("HTTP {status}: {}", snippet(body)));
    }
    let code = |fields: &[&str]| -> Result<(), String> {
        let v: Value = serde_json::from_slice(body).map_err(|_| format!("not JSON: {}", snippet(body)))?;
        match fields.iter().find_map(|f| v.get(*f)).and_then(Value::as_i64) {
            Some(0) => Ok(()),
            Some(_) => Err(format!("refused: {}", snippet(body))),
            None => Err(format!("no result code: {}", snippet(body))),
        }
    };
    match kind {
        Kind::Wecom | Kind::Dingtalk => code(&["errcode"]),
        // Feishu's current bots answer `code`; older ones `StatusCode`.
        Kind::Feishu => code(&["code", "StatusCode"]),
        Kind::Webhook => Ok(()),
    }
}

/// The start of an answer, for the log.
fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
}

/// How a failed attempt is retried: `attempts` in all, waiting `first`, then twice as long each
/// time (2 s, 4 s, 8 s, 16 s by default: a round ends within half a minute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Attempts per round, the first included (at least 1).
    pub attempts: u32,
    /// The wait before the second attempt.
    pub first: std::time::Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            attempts: 5,
            first: std::time::Duration::from_secs(2),
        }
    }
}

impl Backoff {
    /// The wait after failed attempt `n` (1-based).
    pub fn wait(self, n: u32) -> std::time::Duration {
        self.first.saturating_mul(1u32 << n.saturating_sub(1).min(16))
    }
}

/// What one attempt came to: the HTTP status if the receiver answered, and the error if it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tried {
    /// The HTTP status answered.
    pub http_status: Option<u16>,
    /// Why it failed.
    pub error: Option<String>,
}

/// Sends one attempt.
pub async fn attempt(client: &reqwest::Client, kind: Kind, out: &Outgoing) -> Tried {
    let mut req = client
        .post(&out.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(out.body.clone());
    for (name, value) in &out.headers {
        req = req.header(*name, value);
    }
    match req.send().await {
        Err(e) => Tried {
            http_status: None,
            // Without the URL: a bot's URL holds its access token.
            error: Some(format!("not sent: {}", e.without_url())),
        },
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            Tried {
                http_status: Some(status),
                error: accepted(kind, status, &body).err(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_platforms_published_examples() {
        // DingTalk's documented recipe, computed by hand for a fixed timestamp: the sign is
        // URL-encoded (its base64 may hold + / =).
        let url = dingtalk_url(
            "https://oapi.dingtalk.com/robot/send?access_token=t",
            "SECabc",
            1_700_000_000_000,
        )
        .unwrap();
        let sign = b64(&hmac_sha256(b"SECabc", b"1700000000000\nSECabc"));
        let encoded = sign.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
        assert_eq!(
            url,
            format!("https://oapi.dingtalk.com/robot/send?access_token=t&timestamp=1700000000000&sign={encoded}")
        );
        // RFC 4231 test case 2 pins the HMAC itself.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            webhook_signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_200_with_an_error_code_is_a_failure() {
        assert!(accepted(Kind::Wecom, 200, br#"{"errcode":0,"errmsg":"ok"}"#).is_ok());
        assert!(
            accepted(
                Kind::Wecom,
                200,
                br#"{"errcode":45009,"errmsg":"api freq out of limit"}"#
            )
            .is_err()
        );
        assert!(accepted(Kind::Dingtalk, 200, br#"{"errcode":310000,"errmsg":"sign not match"}"#).is_err());
        assert!(accepted(Kind::Feishu, 200, br#"{"code":0,"msg":"success","data":{}}"#).is_ok());
        assert!(accepted(Kind::Feishu, 200, br#"{"code":19021,"msg":"sign match fail"}"#).is_err());
        assert!(accepted(Kind::Feishu, 200, b"<html>").is_err());
        assert!(accepted(Kind::Webhook, 204, b"").is_ok());
        assert!(accepted(Kind::Webhook, 500, b"down").is_err());
        let b = Backoff::default();
        assert_eq!((b.wait(1).as_secs(), b.wait(4).as_secs()), (2, 16));
    }
}
