"""Paper quantities (Eq. 1-5 and the named but undefined ones), statistics and verdicts."""
