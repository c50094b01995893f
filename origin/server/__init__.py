"""The origin server: serves titles from storage over HTTP with ranges and validators."""
