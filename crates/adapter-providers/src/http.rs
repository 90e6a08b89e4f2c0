//! The one HTTP client every provider call goes through: explicit timeouts, no redirects
//! (a redirect could carry a token to another host), a bounded response body, and failures
//! reduced to what is safe to report (status, timeout, unreachable — never a body).

use std::{future::Future, pin::Pin, time::Duration};

use domain::integrations::ProviderError;
use oauth2::{AsyncHttpClient, HttpRequest, HttpResponse};
use reqwest::{Client, RequestBuilder, Response, StatusCode, redirect::Policy};
use serde::de::DeserializeOwned;

use crate::config::GatewayConfigError;

/// Largest provider response read; anything longer is refused (no provider answer we read
/// comes near it).
const MAX_BODY_BYTES: usize = 256 * 1024;

/// Why an HTTP exchange with a provider failed, before the provider's meaning is applied.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamFailure {
    /// No answer within the timeout.
    #[error("timed out")]
    Timeout,
    /// Connection refused, DNS, TLS, reset.
    #[error("unreachable")]
    Unreachable,
    /// An error status whose body is not something to interpret (5xx, 429, or a 4xx that
    /// is not JSON).
    #[error("HTTP status {0}")]
    Status(u16),
    /// The body is larger than allowed.
    #[error("response too large")]
    TooLarge,
    /// The request could not be built (a bug or a bad configured URL).
    #[error("invalid request: {0}")]
    Request(String),
}

impl From<UpstreamFailure> for ProviderError {
    fn from(e: UpstreamFailure) -> Self {
        match e {
            UpstreamFailure::Timeout => ProviderError::Timeout,
            UpstreamFailure::Unreachable => ProviderError::Unreachable,
            UpstreamFailure::Status(status) => ProviderError::Status { status },
            UpstreamFailure::TooLarge => {
                ProviderError::InvalidResponse("the answer is too large".into())
            }
            UpstreamFailure::Request(message) => {
                ProviderError::Unknown(anyhow::anyhow!("request not sent: {message}"))
            }
        }
    }
}

/// The shared client.
#[derive(Clone, Debug)]
pub(crate) struct ProviderHttp {
    client: Client,
}

impl ProviderHttp {
    pub(crate) fn new(
        timeout: Duration,
        connect_timeout: Duration,
        user_agent: &str,
    ) -> Result<Self, GatewayConfigError> {
        let client = Client::builder()
            .timeout(timeout)
            .connect_timeout(connect_timeout.min(timeout))
            .redirect(Policy::none())
            .user_agent(user_agent)
            .build()
            .map_err(|e| GatewayConfigError::Client(e.to_string()))?;
        Ok(Self { client })
    }

    /// The underlying client, to build requests.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Sends a request and returns the status and (bounded) body.
    pub(crate) async fn send(
        &self,
        request: RequestBuilder,
    ) -> Result<(StatusCode, Vec<u8>), UpstreamFailure> {
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        Ok((status, read_bounded(response).await?))
    }

    /// Sends a request expecting a 2xx JSON answer of type `T`.
    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
    ) -> Result<T, ProviderError> {
        let (status, body) = self.send(request).await?;
        if !status.is_success() {
            return Err(ProviderError::Status {
                status: status.as_u16(),
            });
        }
        // The serde message may quote the body: it is not kept.
        serde_json::from_slice(&body)
            .map_err(|_| ProviderError::InvalidResponse("unexpected JSON shape".into()))
    }
}

/// oauth2's HTTP client: the same client, with error statuses that carry no OAuth error
/// (5xx, 429, non-JSON 4xx) turned into [`UpstreamFailure::Status`] so the caller can tell a
/// provider failure from a refusal.
pub(crate) struct OAuthHttp<'a>(pub(crate) &'a ProviderHttp);

impl<'c> AsyncHttpClient<'c> for OAuthHttp<'_> {
    type Error = UpstreamFailure;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, UpstreamFailure>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)
                .map_err(|e| UpstreamFailure::Request(e.to_string()))?;
            let response = self.0.client.execute(request).await.map_err(transport)?;
            let status = response.status();
            let body = read_bounded(response).await?;
            let oauth_error_body = status.is_client_error()
                && status != StatusCode::TOO_MANY_REQUESTS
                && serde_json::from_slice::<serde_json::Value>(&body).is_ok();
            if !status.is_success() && !oauth_error_body {
                return Err(UpstreamFailure::Status(status.as_u16()));
            }
            http_response(status, body)
        })
    }
}

fn http_response(status: StatusCode, body: Vec<u8>) -> Result<HttpResponse, UpstreamFailure> {
    oauth2::http::Response::builder()
        .status(status.as_u16())
        .header(oauth2::http::header::CONTENT_TYPE, "application/json")
        .body(body)
        .map_err(|e| UpstreamFailure::Request(e.to_string()))
}

fn transport(e: reqwest::Error) -> UpstreamFailure {
    if e.is_timeout() {
        UpstreamFailure::Timeout
    } else if e.is_builder() {
        UpstreamFailure::Request("the request could not be built".into())
    } else {
        UpstreamFailure::Unreachable
    }
}

async fn read_bounded(mut response: Response) -> Result<Vec<u8>, UpstreamFailure> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(UpstreamFailure::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(UpstreamFailure::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
