"""Signal, through signal-cli-rest-api: the connector and its parts."""
