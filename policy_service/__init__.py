"""policy_service"""
