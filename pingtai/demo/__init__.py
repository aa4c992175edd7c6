"""The demo province (浙江省, Zhejiang), loaded through the gateway's public APIs."""
