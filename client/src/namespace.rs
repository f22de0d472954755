//! The configuration API through the client: namespaces (`vane.v1.Config`). Changes are
//! retried only when certainly not applied (creating a namespace twice fails against
//! its own success); reads and dry runs go to any member.

use vane_proto::api::config_client::ConfigClient;
use vane_proto::api::{
    CreateNamespaceRequest, DeleteNamespaceRequest, GetNamespaceRequest, ListNamespacesRequest,
    ListNamespacesResponse, Namespace, NamespaceResponse, UpdateNamespaceRequest,
    ValidateValueRequest, ValidateValueResponse,
};

use crate::client::{Attempts, Client, Headed};
use crate::error::Error;
use crate::members::{Conn, Route};
use crate::retry::Retry;

macro_rules! headless {
    ($($response:ty),* $(,)?) => {
        $(impl Headed for $response {
            fn header(&self) -> Option<&vane_proto::etcdserverpb::ResponseHeader> {
                None
            }
        })*
    };
}

headless!(
    NamespaceResponse,
    ListNamespacesResponse,
    ValidateValueResponse
);

impl Client {
    /// Creates a namespace: it claims `namespace.prefix` and every write under it must
    /// then meet its schema and approval policy, on every API.
    pub async fn create_namespace(&self, namespace: Namespace) -> Result<NamespaceResponse, Error> {
        let request = CreateNamespaceRequest {
            namespace: Some(namespace),
        };
        self.config_call(
            "namespace create",
            Route::Write,
            Retry::OnlyUnapplied,
            |mut c| {
                let request = request.clone();
                async move { c.create_namespace(request).await.map(|r| r.into_inner()) }
            },
        )
        .await
    }

    /// Replaces a namespace's policy; with `force`, a schema that existing values do not
    /// satisfy is accepted and those values reported.
    pub async fn update_namespace(
        &self,
        namespace: Namespace,
        force: bool,
    ) -> Result<NamespaceResponse, Error> {
        let request = UpdateNamespaceRequest {
            namespace: Some(namespace),
            force,
        };
        self.config_call(
            "namespace update",
            Route::Write,
            Retry::OnlyUnapplied,
            |mut c| {
                let request = request.clone();
                async move { c.update_namespace(request).await.map(|r| r.into_inner()) }
            },
        )
        .await
    }

    /// Deletes a namespace that no longer has keys.
    pub async fn delete_namespace(&self, name: &str) -> Result<NamespaceResponse, Error> {
        let request = DeleteNamespaceRequest {
            name: name.to_string(),
        };
        self.config_call(
            "namespace delete",
            Route::Write,
            Retry::OnlyUnapplied,
            |mut c| {
                let request = request.clone();
                async move { c.delete_namespace(request).await.map(|r| r.into_inner()) }
            },
        )
        .await
    }

    /// One namespace by name.
    pub async fn get_namespace(&self, name: &str) -> Result<NamespaceResponse, Error> {
        let request = GetNamespaceRequest {
            name: name.to_string(),
        };
        self.config_call("namespace get", Route::Read, Retry::Always, |mut c| {
            let request = request.clone();
            async move { c.get_namespace(request).await.map(|r| r.into_inner()) }
        })
        .await
    }

    /// Every namespace, by name.
    pub async fn list_namespaces(&self) -> Result<ListNamespacesResponse, Error> {
        self.config_call(
            "namespace list",
            Route::Read,
            Retry::Always,
            |mut c| async move {
                c.list_namespaces(ListNamespacesRequest {})
                    .await
                    .map(|r| r.into_inner())
            },
        )
        .await
    }

    /// Whether writing `value` at `key` would be accepted now, and why not: a dry run.
    pub async fn validate_value(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> Result<ValidateValueResponse, Error> {
        let request = ValidateValueRequest {
            key: key.into(),
            value: value.into(),
        };
        self.config_call("validate", Route::Read, Retry::Always, |mut c| {
            let request = request.clone();
            async move { c.validate_value(request).await.map(|r| r.into_inner()) }
        })
        .await
    }

    async fn config_call<T, F, Fut>(
        &self,
        what: &'static str,
        route: Route,
        retry: Retry,
        mut attempt: F,
    ) -> Result<T, Error>
    where
        T: Headed,
        F: FnMut(ConfigClient<Conn>) -> Fut,
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        self.inner
            .call(
                what,
                route,
                retry,
                self.inner.deadline(),
                &mut Attempts::default(),
                |channel| attempt(ConfigClient::new(channel)),
            )
            .await
    }
}
