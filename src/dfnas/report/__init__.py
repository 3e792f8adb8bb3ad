"""Tables and figures from any runs that follow the result contract."""
