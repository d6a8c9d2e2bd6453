"""The browser desk: campaigners log in with a name and password (`outreach users`) and work in a web page."""
