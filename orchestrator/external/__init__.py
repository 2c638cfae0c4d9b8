"""One narrow module per external system: the validators (gRPC and ops HTTP), the Prometheus
server and its query client, the Helm engine, kubernetes-validate, the Kubernetes API, Locust
and the node's simulator. Nothing here knows scenarios, plans or platforms."""
