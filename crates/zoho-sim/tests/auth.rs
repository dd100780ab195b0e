mod common;

use common::*;
use serde_json::Value;
use zoho_sim::SimConfig;

#[tokio::test]
async fn token_endpoint_accepts_form_or_query_and_errors_with_200() {
    let ctx = Ctx::new(SimConfig::default()).await;
    let base = ctx.sim.base_url();
    // Query-string form, as Zoho's own examples do.
    let r = ctx
        .http
        .post(format!("{base}/oauth/v2/token?grant_type=refresh_token&client_id=sim-client-id&client_secret=sim-client-secret&refresh_token=sim-refresh-token"))
        .send()
        .await
        .unwrap();
    let (s, v) = sj(r).await;
    assert_eq!(s, 200);
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3600);
    assert_eq!(v["api_domain"], base.as_str());
    assert!(v["access_token"].as_str().unwrap().starts_with("1000."));

    let bad_client = ctx.http.post(format!("{base}/oauth/v2/token")).form(&[("grant_type", "refresh_token"), ("client_id", "x"), ("client_secret", "sim-client-secret"), ("refresh_token", "sim-refresh-token")]).send().await.unwrap();
    let (s, v) = sj(bad_client).await;
    assert_eq!((s.as_u16(), v["error"].as_str()), (200, Some("invalid_client")));
    let bad_refresh = ctx.http.post(format!("{base}/oauth/v2/token")).form(&[("grant_type", "refresh_token"), ("client_id", "sim-client-id"), ("client_secret", "sim-client-secret"), ("refresh_token", "nope")]).send().await.unwrap();
    let (s, v) = sj(bad_refresh).await;
    assert_eq!((s.as_u16(), v["error"].as_str()), (200, Some("invalid_code")));
}

#[tokio::test]
async fn auth_header_is_checked() {
    let ctx = Ctx::new(SimConfig::default().seed("Leads", 3)).await;
    let path = "/crm/v8/Leads?fields=Last_Name";
    let (s, v) = sj(ctx.http.get(ctx.url(path)).send().await.unwrap()).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (401, Some("AUTHENTICATION_FAILURE")));
    let (s, v) = sj(ctx.http.get(ctx.url(path)).header("Authorization", format!("Bearer {}", ctx.token)).send().await.unwrap()).await;
    assert_eq!(s, 401, "{v}");
    let (s, v) = sj(ctx.http.get(ctx.url(path)).header("Authorization", "Zoho-oauthtoken 1000.bogus").send().await.unwrap()).await;
    assert_eq!((s.as_u16(), v["code"].as_str(), v["message"].as_str()), (401, Some("INVALID_TOKEN"), Some("invalid oauth token")));
    let (s, _) = sj(ctx.get(path).await).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn tokens_expire_by_ttl_clock_and_admin() {
    let ctx = Ctx::new(SimConfig::default().token_ttl_secs(60).seed("Leads", 2)).await;
    let path = "/crm/v8/Leads?fields=Last_Name";
    assert_eq!(ctx.get(path).await.status(), 200);
    ctx.sim.advance_clock(std::time::Duration::from_secs(61));
    let (s, v) = sj(ctx.get(path).await).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (401, Some("INVALID_TOKEN")));
    let fresh = fetch_token(&ctx.http, &ctx.sim.base_url()).await;
    let ok = ctx.http.get(ctx.url(path)).header("Authorization", format!("Zoho-oauthtoken {fresh}")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    ctx.sim.expire_tokens();
    let gone = ctx.http.get(ctx.url(path)).header("Authorization", format!("Zoho-oauthtoken {fresh}")).send().await.unwrap();
    assert_eq!(gone.status(), 401);
}

#[tokio::test]
async fn ten_refreshes_per_ten_minutes_and_ten_live_tokens() {
    let ctx = Ctx::new(SimConfig::default().seed("Leads", 1)).await; // 1 refresh used
    let base = ctx.sim.base_url();
    let mut tokens = vec![ctx.token.clone()];
    for _ in 0..9 {
        tokens.push(fetch_token(&ctx.http, &base).await);
    }
    // The 11th refresh inside 10 minutes is refused, with HTTP 200.
    let r = ctx.http.post(format!("{base}/oauth/v2/token")).form(&[("grant_type", "refresh_token"), ("client_id", "sim-client-id"), ("client_secret", "sim-client-secret"), ("refresh_token", "sim-refresh-token")]).send().await.unwrap();
    let (s, v) = sj(r).await;
    assert_eq!(s, 200);
    assert_eq!(v["error"], "Access Denied");
    assert!(v["error_description"].as_str().unwrap().starts_with("You have made too many requests"));
    // After the window, an 11th token revokes the oldest.
    ctx.sim.advance_clock(std::time::Duration::from_secs(601));
    // Tokens live an hour, so the ten earlier ones are still live.
    let eleventh = fetch_token(&ctx.http, &base).await;
    let path = "/crm/v8/Leads?fields=Last_Name";
    let use_tok = |t: String| {
        let http = ctx.http.clone();
        let url = ctx.url(path);
        async move { http.get(url).header("Authorization", format!("Zoho-oauthtoken {t}")).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(use_tok(tokens[0].clone()).await, 401, "oldest revoked");
    assert_eq!(use_tok(tokens[1].clone()).await, 200);
    assert_eq!(use_tok(eleventh).await, 200);
    let _: Value = Value::Null;
}
