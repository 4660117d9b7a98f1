"""Command-line entry points (click). Each command maps flags onto the library's API."""
