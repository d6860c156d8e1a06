"""fleet in a cluster: a kustomize overlay's run pod, and the CronJobs and sharded Jobs made from it."""
