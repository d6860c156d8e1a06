"""Token providers (eks, gke, oauth command, exec, in-cluster) and the refreshing credential that every
request to a cluster uses."""
