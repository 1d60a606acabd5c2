from egis_binance_local.cli import main

main()
