"""The search engine cluster: client flavours (``clients``) and the loopback OpenSearch
cluster used by the tests and ``make opensearch`` (``cluster``; the Java launcher is in
``opensearch-launcher/``)."""
