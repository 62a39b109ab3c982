from media_mgr.cli import main

main()
