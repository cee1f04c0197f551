"""What OPX reports about itself: metric names and the CloudWatch Embedded Metric Format."""
