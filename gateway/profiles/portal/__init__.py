"""The portal profile: the gateway's own sign-in in front of any web application, and forward auth."""
